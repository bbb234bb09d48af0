//! IAM wildcards: `*` matches any run of characters (none included), `?`
//! exactly one; everything else is literal. Patterns are compiled once, at
//! parse; policy variables (`${aws:username}`) are resolved per request.
//!
//! Every match draws on a [`Budget`] of steps shared by the whole
//! evaluation: a match is linear in its text in the usual case but can cost
//! pattern × text (`*aaaa…b` against `aaaa…`), and a request chooses its
//! texts. Must never: match once the budget is spent (the caller turns an
//! exhausted evaluation into a refusal).

use std::cell::Cell;

/// The work an evaluation may still do, in glob steps (one step: one
/// character of text examined or skipped, one resolved variable byte, or
/// one comparison). Once spent, every match fails and
/// [`Budget::exhausted`] says so.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Cell<u64>,
    spent: Cell<u64>,
    exhausted: Cell<bool>,
}

impl Budget {
    pub(crate) fn new(steps_max: u64) -> Budget {
        Budget {
            left: Cell::new(steps_max),
            spent: Cell::new(0),
            exhausted: Cell::new(false),
        }
    }

    /// For matches at parse time (actions against the fixed action list).
    pub(crate) fn unlimited() -> Budget {
        Budget::new(u64::MAX)
    }

    /// Takes `steps`; `false` (and exhausted from then on) when fewer are
    /// left.
    pub(crate) fn take(&self, steps: u64) -> bool {
        let left = self.left.get();
        if self.exhausted.get() || steps > left {
            self.left.set(0);
            self.exhausted.set(true);
            return false;
        }
        self.left.set(left - steps);
        self.spent.set(self.spent.get().saturating_add(steps));
        true
    }

    fn left(&self) -> u64 {
        if self.exhausted.get() {
            0
        } else {
            self.left.get()
        }
    }

    pub(crate) fn exhausted(&self) -> bool {
        self.exhausted.get()
    }

    pub(crate) fn spent(&self) -> u64 {
        self.spent.get()
    }
}

/// One piece of a compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal characters (a `${*}` in the source is a literal `*` here).
    Lit(String),
    Star,
    One,
    /// A policy variable's key, normalised (`aws:username`).
    Var(String),
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    pieces: Vec<Piece>,
    /// No wildcard and no variable: compare as a string.
    plain: Option<String>,
    /// No variable: the compiled tokens, so a match allocates nothing.
    toks: Option<Vec<Tok>>,
    /// The literal text before the first wildcard or variable: a text not
    /// starting with it fails at once (one comparison, no glob).
    prefix: String,
}

impl Pattern {
    /// Whether every policy variable in the pattern is one Cairn supplies
    /// (an unknown one would never resolve, and the pattern never match).
    pub(crate) fn variables_supported(&self) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Var(name) => crate::is_supported_condition_key(name),
            _ => true,
        })
    }

    /// Compiles `src`; with `variables`, `${…}` are policy variables
    /// (`${*}`, `${?}`, `${$}` stand for those characters). An unterminated
    /// `${` is literal.
    pub(crate) fn compile(src: &str, variables: bool) -> Pattern {
        Self::compile_with(src, variables, true)
    }

    /// [`Pattern::compile`] with `*` and `?` literal (StringEquals).
    pub(crate) fn literal(src: &str, variables: bool) -> Pattern {
        Self::compile_with(src, variables, false)
    }

    fn compile_with(src: &str, variables: bool, wildcards: bool) -> Pattern {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        while let Some(c) = rest.chars().next() {
            if variables
                && rest.starts_with("${")
                && let Some(end) = rest.find('}')
            {
                let name = &rest[2..end];
                rest = &rest[end + 1..];
                match name {
                    "*" | "?" | "$" => lit.push_str(name),
                    _ => {
                        if !lit.is_empty() {
                            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                        }
                        pieces.push(Piece::Var(crate::normalize_key(name)));
                    }
                }
                continue;
            }
            rest = &rest[c.len_utf8()..];
            match c {
                '*' | '?' if wildcards => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(if c == '*' { Piece::Star } else { Piece::One });
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        let plain = match pieces.as_slice() {
            [] => Some(String::new()),
            [Piece::Lit(s)] => Some(s.clone()),
            _ => None,
        };
        let toks = if pieces.iter().any(|p| matches!(p, Piece::Var(_))) {
            None
        } else {
            let mut toks = Vec::new();
            for piece in &pieces {
                push_toks(&mut toks, piece, "");
            }
            Some(toks)
        };
        let prefix = match pieces.first() {
            Some(Piece::Lit(s)) => s.clone(),
            _ => String::new(),
        };
        Pattern {
            pieces,
            plain,
            toks,
            prefix,
        }
    }

    pub(crate) fn has_wildcard(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Star | Piece::One))
    }

    /// The (normalised) keys of the variables in the pattern.
    pub(crate) fn variables(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(name) => Some(name.as_str()),
            _ => None,
        })
    }

    pub(crate) fn has_variable(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Var(_)))
    }

    /// Matches `text` without a bound (parse-time matches of fixed texts).
    pub(crate) fn matches(
        &self,
        text: &str,
        fold: bool,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        self.matches_within(text, fold, var, &Budget::unlimited())
    }

    /// Matches `text`; `var` resolves a variable (`None`: the pattern does
    /// not match — a missing variable matches nothing). `fold` compares
    /// case-insensitively (ASCII). Draws on `budget`; `false` once it is
    /// spent.
    pub(crate) fn matches_within(
        &self,
        text: &str,
        fold: bool,
        var: &dyn Fn(&str) -> Option<String>,
        budget: &Budget,
    ) -> bool {
        if !budget.take(1) {
            return false;
        }
        if let Some(p) = &self.plain {
            return if fold {
                p.eq_ignore_ascii_case(text)
            } else {
                p == text
            };
        }
        let head = text.as_bytes().get(..self.prefix.len());
        let starts = head.is_some_and(|h| {
            if fold {
                h.eq_ignore_ascii_case(self.prefix.as_bytes())
            } else {
                h == self.prefix.as_bytes()
            }
        });
        if !starts {
            return false;
        }
        if let Some(toks) = &self.toks {
            return glob(toks, text.as_bytes(), fold, budget);
        }
        // Resolve variables into literal tokens first.
        let mut resolved: Vec<Tok> = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Var(name) => match var(name) {
                    Some(v) => {
                        if !budget.take(v.len() as u64) {
                            return false;
                        }
                        push_toks(&mut resolved, &Piece::Lit(String::new()), &v)
                    }
                    None => return false,
                },
                other => push_toks(&mut resolved, other, ""),
            }
        }
        glob(&resolved, text.as_bytes(), fold, budget)
    }
}

/// Appends the tokens of `piece` (a `Var` is never passed; `value` is the
/// text of a resolved variable, given with an empty `Lit`).
fn push_toks(toks: &mut Vec<Tok>, piece: &Piece, value: &str) {
    match piece {
        Piece::Lit(s) => {
            toks.extend(s.bytes().map(Tok::Lit));
            toks.extend(value.bytes().map(Tok::Lit));
        }
        Piece::Star => toks.push(Tok::Star),
        Piece::One => toks.push(Tok::One),
        Piece::Var(_) => {}
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    Star,
    /// One character (one to four UTF-8 bytes).
    One,
}

/// The length of the UTF-8 character starting at `text[t]`.
fn char_len(text: &[u8], t: usize) -> usize {
    let mut n = 1;
    while t + n < text.len() && (text[t + n] & 0xC0) == 0x80 {
        n += 1;
    }
    n
}

/// Iterative wildcard match over UTF-8 bytes with one backtrack point (no
/// exponential blow-up, but pattern × text in the worst case); `?` takes
/// one whole character. Each turn of the loop is one step of `budget`.
fn glob(pat: &[Tok], text: &[u8], fold: bool, budget: &Budget) -> bool {
    let eq = |a: u8, b: u8| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    // Counted locally, charged once: the loop stays tight.
    let steps_max = budget.left();
    let mut steps = 0u64;
    while t < text.len() {
        steps += 1;
        if steps > steps_max {
            budget.take(steps);
            return false;
        }
        match pat.get(p) {
            Some(Tok::Lit(c)) if eq(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += char_len(text, t);
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    let next = st + char_len(text, st);
                    p = sp + 1;
                    t = next;
                    star = Some((sp, next));
                }
                None => {
                    budget.take(steps);
                    return false;
                }
            },
        }
    }
    budget.take(steps) && pat[p..].iter().all(|t| matches!(t, Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, t: &str) -> bool {
        Pattern::compile(p, true).matches(t, false, &|k| {
            (k == "aws:username").then(|| "alice".to_owned())
        })
    }

    #[test]
    fn wildcards_and_variables() {
        assert!(m("*", ""));
        assert!(m("a*", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("home/${aws:username}/*", "home/alice/x"));
        assert!(!m("home/${aws:username}/*", "home/bob/x"));
        assert!(
            !m("home/${aws:userid}/*", "home/alice/x"),
            "missing variable"
        );
        assert!(m("a${*}b", "a*b"));
        assert!(!m("a${*}b", "axb"), "${{*}} is a literal star");
        assert!(m("a${?}", "a?"));
        assert!(m("a${$}", "a$"));
        assert!(!Pattern::compile("s3:Get*", false).matches("s3:getobject", false, &|_| None));
        assert!(Pattern::compile("s3:Get*", false).matches("s3:getobject", true, &|_| None));
        // Without variables, ${ is literal.
        assert!(Pattern::compile("${x}", false).matches("${x}", false, &|_| None));
        assert!(Pattern::literal("a*", true).matches("a*", false, &|_| None));
        assert!(!Pattern::literal("a*", true).matches("ab", false, &|_| None));
    }

    /// A slow reference: recursive matching.
    fn reference(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some('?'), Some(_)) => reference(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_a_reference(p in "[ab\u{e9}*?]{0,8}", t in "[ab\u{e9}]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(
                Pattern::compile(&p, false).matches(&t, false, &|_| None),
                reference(&pc, &tc)
            );
        }
    }
}
