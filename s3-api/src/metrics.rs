//! S3 request metrics. Labels are bounded: the operation name (a fixed set)
//! and the status class (`2xx` … `5xx`), never bucket or key names.

use std::time::Duration;

use http::StatusCode;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

#[derive(Clone, Debug)]
pub struct S3Metrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    pub received_bytes: IntCounter,
    pub sent_bytes: IntCounter,
    pub inflight: IntGauge,
    auth_failures: IntCounterVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> Result<T, String> {
    r.register(Box::new(c.clone())).map_err(|e| e.to_string())?;
    Ok(c)
}

impl S3Metrics {
    pub fn register(r: &Registry) -> Result<Self, String> {
        let e = |e: prometheus::Error| e.to_string();
        Ok(S3Metrics {
            requests: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "cairn_s3_requests_total",
                        "S3 requests by operation and status class",
                    ),
                    &["operation", "status_class"],
                )
                .map_err(e)?,
            )?,
            errors: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "cairn_s3_errors_total",
                        "S3 requests answered with an error, by operation and HTTP status",
                    ),
                    &["operation", "status"],
                )
                .map_err(e)?,
            )?,
            duration: reg(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "cairn_s3_request_duration_seconds",
                        "Time from request head to response head, by operation",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0, 30.0, 60.0,
                    ]),
                    &["operation"],
                )
                .map_err(e)?,
            )?,
            received_bytes: reg(
                r,
                IntCounter::new(
                    "cairn_s3_received_bytes_total",
                    "Object and part payload bytes received (decoded)",
                )
                .map_err(e)?,
            )?,
            sent_bytes: reg(
                r,
                IntCounter::new("cairn_s3_sent_bytes_total", "Object payload bytes sent")
                    .map_err(e)?,
            )?,
            inflight: reg(
                r,
                IntGauge::new("cairn_s3_inflight_requests", "S3 requests being handled")
                    .map_err(e)?,
            )?,
            auth_failures: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "cairn_s3_auth_failures_total",
                        "S3 requests whose signature or credentials did not verify, by S3 error code",
                    ),
                    &["code"],
                )
                .map_err(e)?,
            )?,
        })
        .inspect(|m| {
            // The common codes exist from the start, so dashboards and
            // alerts see 0 rather than nothing.
            for code in ["SignatureDoesNotMatch", "InvalidAccessKeyId"] {
                m.auth_failures.with_label_values(&[code]);
            }
        })
    }

    /// A request refused by authentication (`code`: an S3 error code, a
    /// fixed set).
    pub fn auth_failed(&self, code: &'static str) {
        self.auth_failures.with_label_values(&[code]).inc();
    }

    pub fn observe(&self, operation: &str, status: StatusCode, elapsed: Duration) {
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests.with_label_values(&[operation, class]).inc();
        if status.as_u16() >= 400 {
            self.errors
                .with_label_values(&[operation, status.as_str()])
                .inc();
        }
        self.duration
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
    }
}
