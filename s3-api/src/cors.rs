//! CORS (cross-origin resource sharing) as S3 defines it: a bucket's rules
//! (PutBucketCors), the answer to a browser's preflight `OPTIONS`, and the
//! `Access-Control-*` headers an actual response carries.
//!
//! Owns: validating rules before they are stored (S3's limits and errors),
//! their stored form (the canonical `CORSConfiguration` document, which
//! GetBucketCors answers), and matching as S3 documents it: the first rule
//! whose `AllowedOrigin`, `AllowedMethod` and — for a preflight — every
//! requested header's `AllowedHeader` match wins.
//!
//! Must never: grant access. CORS only lets a browser show a page what
//! authorization (access.rs) already allowed; a preflight is answered
//! without any signature and reads nothing but the bucket's rules. A
//! preflight for a missing bucket is answered as one for a bucket without
//! rules (no probing for names). Matching is linear in what the request
//! sends: one wildcard per pattern, at most [`MAX_RULES`] rules, at most
//! [`MAX_PREFLIGHT_HEADERS`] requested headers.

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, empty};
use crate::xml::{CorsConfiguration, CorsConfigurationDoc, CorsRule, CorsRuleDoc, XmlText, to_xml};

/// S3's limit on rules per bucket.
pub(crate) const MAX_RULES: usize = 100;
/// S3's limit on a CORS configuration's size.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most headers a preflight may ask for (browsers ask for a handful);
/// more is refused like a header no rule allows.
pub(crate) const MAX_PREFLIGHT_HEADERS: usize = 64;
/// The methods a rule may allow.
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// What every CORS answer varies on (caches must key on these).
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// A bucket's validated rules.
#[derive(Debug)]
pub(crate) struct CorsRules {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    id: Option<String>,
    origins: Vec<Wildcard>,
    methods: Vec<&'static str>,
    /// Lowercase: header names compare case-insensitively.
    headers: Vec<Wildcard>,
    expose: Vec<String>,
    max_age: Option<u32>,
}

/// A pattern with at most one `*`, which matches any run of characters.
#[derive(Debug)]
struct Wildcard {
    text: String,
    star: Option<usize>,
}

impl Wildcard {
    fn new(text: String, element: &str) -> S3Result<Self> {
        let mut stars = text.match_indices('*').map(|(at, _)| at);
        let star = stars.next();
        if stars.next().is_some() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("{element} \"{text}\" can not have more than one wildcard."),
            ));
        }
        Ok(Wildcard { text, star })
    }

    fn matches(&self, s: &str) -> bool {
        match self.star {
            None => self.text == s,
            Some(at) => {
                let (prefix, suffix) = (&self.text[..at], &self.text[at + 1..]);
                s.len() >= prefix.len() + suffix.len()
                    && s.starts_with(prefix)
                    && s.ends_with(suffix)
            }
        }
    }

    fn is_any(&self) -> bool {
        self.text == "*"
    }
}

impl Rule {
    fn from_doc(doc: CorsRuleDoc) -> S3Result<Rule> {
        if doc.allowed_methods.is_empty() || doc.allowed_origins.is_empty() {
            return Err(S3Error::new(S3ErrorCode::MalformedXML));
        }
        if let Some(id) = &doc.id
            && id.chars().count() > 255
        {
            return Err(S3Error::invalid_argument(
                "The ID of a CORS rule must be 255 characters or fewer.",
                "ID",
                id,
            ));
        }
        let methods = doc
            .allowed_methods
            .iter()
            .map(|m| {
                METHODS.iter().copied().find(|known| known == m).ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidRequest,
                        format!(
                            "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                        ),
                    )
                })
            })
            .collect::<S3Result<Vec<_>>>()?;
        if let Some(star) = doc.expose_headers.iter().find(|h| h.contains('*')) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "ExposeHeader \"{star}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
                ),
            ));
        }
        let max_age = match doc.max_age_seconds.as_deref().map(str::trim) {
            None => None,
            Some(text) => Some(
                text.parse::<u32>()
                    .map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?,
            ),
        };
        Ok(Rule {
            id: doc.id,
            origins: doc
                .allowed_origins
                .into_iter()
                .map(|o| Wildcard::new(o, "AllowedOrigin"))
                .collect::<S3Result<_>>()?,
            methods,
            headers: doc
                .allowed_headers
                .into_iter()
                .map(|h| Wildcard::new(h.to_ascii_lowercase(), "AllowedHeader"))
                .collect::<S3Result<_>>()?,
            expose: doc.expose_headers,
            max_age,
        })
    }

    fn allows(&self, origin: &str, method: &str) -> bool {
        self.methods.contains(&method) && self.origins.iter().any(|o| o.matches(origin))
    }

    /// `Access-Control-Allow-Origin` for `origin`: `*` when the rule allows
    /// every origin (and then no credentials), else the origin itself.
    fn allow_origin_header(&self, origin: &HeaderValue, h: &mut HeaderMap) {
        if self.origins.iter().any(Wildcard::is_any) {
            h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        } else {
            h.insert("access-control-allow-origin", origin.clone());
            h.insert(
                "access-control-allow-credentials",
                HeaderValue::from_static("true"),
            );
        }
        if let Ok(v) = HeaderValue::from_str(&self.methods.join(", ")) {
            h.insert("access-control-allow-methods", v);
        }
        if !self.expose.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.expose.join(", "))
        {
            h.insert("access-control-expose-headers", v);
        }
        if let Some(age) = self.max_age {
            h.insert("access-control-max-age", HeaderValue::from(age));
        }
    }
}

impl CorsRules {
    /// Validates a PutBucketCors document (the body, already parsed).
    pub(crate) fn from_doc(doc: CorsConfigurationDoc) -> S3Result<CorsRules> {
        if doc.rules.is_empty() {
            return Err(S3Error::new(S3ErrorCode::MalformedXML));
        }
        if doc.rules.len() > MAX_RULES {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("A CORS configuration can have at most {MAX_RULES} rules."),
            ));
        }
        let rules = doc
            .rules
            .into_iter()
            .map(Rule::from_doc)
            .collect::<S3Result<Vec<_>>>()?;
        Ok(CorsRules { rules })
    }

    /// Parses and validates a `CORSConfiguration` document (a request body
    /// or the stored form).
    pub(crate) fn parse(text: &str) -> S3Result<CorsRules> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The CORS configuration must be 64 KB or smaller.",
            ));
        }
        let doc: CorsConfigurationDoc =
            crate::xml::parse(text).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
        Self::from_doc(doc)
    }

    /// The canonical document: what is stored and what GetBucketCors
    /// answers (S3 answers the rules, not the bytes that were sent).
    pub(crate) fn to_document(&self) -> String {
        fn text(s: &str) -> XmlText<'_> {
            s.into()
        }
        to_xml(&CorsConfiguration {
            rules: self
                .rules
                .iter()
                .map(|r| CorsRule {
                    id: r.id.as_deref().map(text),
                    allowed_headers: r.headers.iter().map(|w| text(&w.text)).collect(),
                    allowed_methods: r.methods.iter().map(|m| (*m).into()).collect(),
                    allowed_origins: r.origins.iter().map(|w| text(&w.text)).collect(),
                    expose_headers: r.expose.iter().map(|e| text(e)).collect(),
                    max_age_seconds: r.max_age,
                })
                .collect(),
        })
    }

    /// Adds the `Access-Control-*` headers to an actual response when a
    /// rule allows the request's origin and method; `Vary` either way (the
    /// answer depends on the origin).
    pub(crate) fn decorate(&self, origin: &HeaderValue, method: &Method, h: &mut HeaderMap) {
        h.insert(http::header::VARY, HeaderValue::from_static(VARY));
        let Ok(origin_text) = origin.to_str() else {
            return;
        };
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.allows(origin_text, method.as_str()))
        {
            rule.allow_origin_header(origin, h);
        }
    }
}

/// The answer to a preflight `OPTIONS` (S3's "OPTIONS object"): `rules` is
/// the bucket's (`None`: no rules, or no such bucket), `headers` the
/// request's. `resource_type` is `BUCKET` or `OBJECT` for the error body.
pub(crate) fn preflight(
    rules: Option<&CorsRules>,
    headers: &HeaderMap,
    resource_type: &'static str,
) -> S3Result<Response<RespBody>> {
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return Err(S3Error::with_message(
            S3ErrorCode::BadRequest,
            "Insufficient information. Origin request header needed.",
        ));
    };
    let method = headers
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
    let Some(method) = method.clone().filter(|m| METHODS.contains(&m.as_str())) else {
        return Err(S3Error::with_message(
            S3ErrorCode::BadRequest,
            format!(
                "Invalid Access-Control-Request-Method: {}",
                method.as_deref().unwrap_or("null")
            ),
        ));
    };
    let refused = |message: &str| {
        S3Error::with_message(S3ErrorCode::AccessForbidden, message)
            .field("Method", method.clone())
            .field("ResourceType", resource_type)
    };
    let Some(rules) = rules else {
        return Err(refused(
            "CORSResponse: CORS is not enabled for this bucket.",
        ));
    };
    let not_allowed = || {
        refused(
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        )
    };
    let requested: Vec<String> = headers
        .get_all(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|h| !h.is_empty())
        .take(MAX_PREFLIGHT_HEADERS + 1)
        .collect();
    if requested.len() > MAX_PREFLIGHT_HEADERS {
        return Err(not_allowed());
    }
    let origin_text = origin.to_str().map_err(|_| not_allowed())?;
    let rule = rules
        .rules
        .iter()
        .find(|r| {
            r.allows(origin_text, &method)
                && requested
                    .iter()
                    .all(|h| r.headers.iter().any(|allowed| allowed.matches(h)))
        })
        .ok_or_else(not_allowed)?;
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    rule.allow_origin_header(origin, h);
    if !requested.is_empty()
        && let Ok(v) = HeaderValue::from_str(&requested.join(", "))
    {
        h.insert("access-control-allow-headers", v);
    }
    h.insert(http::header::VARY, HeaderValue::from_static(VARY));
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(xml_rules: &str) -> S3Result<CorsRules> {
        CorsRules::parse(&format!(
            "<CORSConfiguration>{xml_rules}</CORSConfiguration>"
        ))
    }

    fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn header<'a>(resp: &'a Response<RespBody>, name: &str) -> Option<&'a str> {
        resp.headers().get(name).map(|v| v.to_str().unwrap())
    }

    const WEB: &str = "<CORSRule><ID>web</ID><AllowedHeader>Content-Type</AllowedHeader><AllowedHeader>x-amz-*</AllowedHeader><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>";

    #[test]
    fn validates_rules_with_s3s_errors() {
        let err = |xml: &str| {
            let e = rules(xml).unwrap_err();
            (e.code, e.message)
        };
        assert_eq!(err("").0, S3ErrorCode::MalformedXML);
        assert_eq!(
            err("<CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>").0,
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            err("<CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>").0,
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            err(
                "<CORSRule><AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>"
            ),
            (
                S3ErrorCode::InvalidRequest,
                "Found unsupported HTTP method in CORS config. Unsupported method is PATCH".into()
            )
        );
        // Methods compare exactly, as S3 does.
        assert_eq!(
            err("<CORSRule><AllowedMethod>get</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>").0,
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            err(
                "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>http://*.*.com</AllowedOrigin></CORSRule>"
            ),
            (
                S3ErrorCode::InvalidRequest,
                "AllowedOrigin \"http://*.*.com\" can not have more than one wildcard.".into()
            )
        );
        assert_eq!(
            err("<CORSRule><AllowedHeader>x-*-*</AllowedHeader><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>").0,
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            err("<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><ExposeHeader>x-*</ExposeHeader></CORSRule>").0,
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            err("<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule>").0,
            S3ErrorCode::MalformedXML
        );
        let many = "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>".repeat(MAX_RULES + 1);
        assert_eq!(err(&many).0, S3ErrorCode::InvalidRequest);
        let many = "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>".repeat(MAX_RULES);
        assert!(rules(&many).is_ok());
    }

    #[test]
    fn the_stored_form_round_trips() {
        let parsed = rules(WEB).unwrap();
        let stored = parsed.to_document();
        let again = CorsRules::parse(&stored).unwrap();
        assert_eq!(again.to_document(), stored);
        // Allowed headers are kept lowercase (they match case-insensitively).
        assert!(stored.contains("<AllowedHeader>content-type</AllowedHeader>"));
    }

    #[test]
    fn wildcards_match_one_run() {
        let w = Wildcard::new("https://*.example.com".into(), "AllowedOrigin").unwrap();
        assert!(w.matches("https://app.example.com"));
        assert!(w.matches("https://a.b.example.com"));
        assert!(!w.matches("https://example.com"));
        assert!(!w.matches("http://app.example.com"));
        // Prefix and suffix must not overlap.
        let w = Wildcard::new("ab*ba".into(), "AllowedOrigin").unwrap();
        assert!(!w.matches("aba"));
        assert!(w.matches("abba"));
        let any = Wildcard::new("*".into(), "AllowedOrigin").unwrap();
        assert!(any.matches("") && any.matches("null"));
    }

    #[test]
    fn preflights_are_answered_from_the_first_matching_rule() {
        let r = rules(WEB).unwrap();
        let ok = preflight(
            Some(&r),
            &request(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "Content-Type, X-Amz-Date"),
            ]),
            "OBJECT",
        )
        .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            header(&ok, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            header(&ok, "access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(
            header(&ok, "access-control-allow-methods"),
            Some("PUT, GET")
        );
        assert_eq!(
            header(&ok, "access-control-allow-headers"),
            Some("content-type, x-amz-date")
        );
        assert_eq!(header(&ok, "access-control-expose-headers"), Some("ETag"));
        assert_eq!(header(&ok, "access-control-max-age"), Some("600"));
        assert_eq!(header(&ok, "vary"), Some(VARY));

        // Another origin: only the second rule (GET from anywhere).
        let any = preflight(
            Some(&r),
            &request(&[
                ("origin", "http://elsewhere.test"),
                ("access-control-request-method", "GET"),
            ]),
            "OBJECT",
        )
        .unwrap();
        assert_eq!(header(&any, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&any, "access-control-allow-credentials"), None);
        assert_eq!(header(&any, "access-control-allow-methods"), Some("GET"));

        let refused = |pairs: &[(&'static str, &str)]| {
            let e = preflight(Some(&r), &request(pairs), "OBJECT").unwrap_err();
            (e.code, e.code.status())
        };
        let forbidden = (S3ErrorCode::AccessForbidden, StatusCode::FORBIDDEN);
        // PUT from another origin; a header no rule allows.
        assert_eq!(
            refused(&[
                ("origin", "http://elsewhere.test"),
                ("access-control-request-method", "PUT")
            ]),
            forbidden
        );
        assert_eq!(
            refused(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "authorization")
            ]),
            forbidden
        );
        let many = vec!["x-amz-a"; MAX_PREFLIGHT_HEADERS + 1].join(",");
        assert_eq!(
            refused(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", &many)
            ]),
            forbidden
        );
        // Missing pieces are 400 BadRequest.
        assert_eq!(
            refused(&[("access-control-request-method", "GET")]).0,
            S3ErrorCode::BadRequest
        );
        assert_eq!(
            refused(&[("origin", "https://app.example.com")]).0,
            S3ErrorCode::BadRequest
        );
        assert_eq!(
            refused(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PATCH")
            ])
            .0,
            S3ErrorCode::BadRequest
        );
        // No rules (or no bucket): 403 either way.
        let e = preflight(
            None,
            &request(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
            ]),
            "BUCKET",
        )
        .unwrap_err();
        assert_eq!(e.code, S3ErrorCode::AccessForbidden);
        assert!(e.message.contains("CORS is not enabled"));
    }

    #[test]
    fn actual_responses_get_headers_only_when_a_rule_matches() {
        let r = rules(WEB).unwrap();
        let origin = HeaderValue::from_static("https://app.example.com");
        let mut h = HeaderMap::new();
        r.decorate(&origin, &Method::PUT, &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-expose-headers"], "ETag");
        let mut h = HeaderMap::new();
        r.decorate(&origin, &Method::DELETE, &mut h);
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(h["vary"], VARY);
        let mut h = HeaderMap::new();
        r.decorate(
            &HeaderValue::from_static("http://x.test"),
            &Method::GET,
            &mut h,
        );
        assert_eq!(h["access-control-allow-origin"], "*");
    }
}
