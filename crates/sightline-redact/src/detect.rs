//! Value detectors: find secrets and personal data inside strings.
//!
//! All built-in patterns are compiled into one regex with a named group each, so a clean
//! string costs one pass of the lazy DFA; matches are then validated where a pattern alone
//! over-matches (Luhn for cards, card prefixes so epoch-millisecond timestamps never match,
//! mod-97 for IBANs, a real parse for IPv6, area/group/serial rules for SSNs).

use std::net::Ipv6Addr;

use regex::Regex;

/// Every built-in detector name.
pub const BUILTIN: &[&str] = &[
    "pem_private_key",
    "jwt",
    "auth_header",
    "anthropic_key",
    "openai_key",
    "github_token",
    "slack_token",
    "google_api_key",
    "stripe_key",
    "aws_access_key_id",
    "aws_secret_key",
    "email",
    "iban",
    "credit_card",
    "us_ssn",
    "phone_e164",
    "ipv6",
    "ipv4",
];

fn pattern(name: &str) -> &'static str {
    match name {
        "pem_private_key" => {
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z ]*PRIVATE KEY-----|\z)"
        }
        "jwt" => r"(?-u:\b)eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
        "auth_header" => r"(?i:(?-u:\b)(?:bearer|basic)[ \t]+)[A-Za-z0-9._~+/=-]{8,}",
        "anthropic_key" => r"(?-u:\b)sk-ant-[A-Za-z0-9_-]{20,}",
        "openai_key" => r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        "github_token" => r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
        "slack_token" => r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,}",
        "google_api_key" => r"(?-u:\b)AIza[0-9A-Za-z_-]{35}",
        "stripe_key" => r"(?-u:\b)[rs]k_(?:live|test)_[0-9A-Za-z]{16,}",
        "aws_access_key_id" => {
            r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?-u:\b)"
        }
        "aws_secret_key" => r"(?:^|[^A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?:$|[^A-Za-z0-9/+=])",
        "email" => r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        "iban" => r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?-u:\b)",
        "credit_card" => r"(?-u:\b)[2-6][0-9](?:[ -]?[0-9]){11,17}(?-u:\b)",
        "us_ssn" => r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)",
        "phone_e164" => r"\+[1-9][0-9]{7,14}(?-u:\b)",
        "ipv6" => r"(?i:(?-u:\b)|::)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:%[0-9a-z]+)?",
        "ipv4" => {
            r"(?-u:\b)(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}(?-u:\b)"
        }
        _ => "",
    }
}

/// Why a detector list is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectorError {
    /// A name that is no built-in detector.
    #[error("unknown detector {0:?}; built-in detectors are: {list}", list = BUILTIN.join(", "))]
    Unknown(String),
    /// A custom regex that does not compile.
    #[error("custom detector {name:?}: {message}")]
    BadRegex {
        /// The detector.
        name: String,
        /// The regex error.
        message: String,
    },
}

/// A secret found in a string: byte range and the detector that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// Index into [`Detectors::names`].
    pub detector: usize,
}

/// The compiled set of detectors of one policy.
#[derive(Debug, Clone)]
pub struct Detectors {
    regex: Option<Regex>,
    names: Vec<String>,
    /// Group index in `regex` of each detector.
    groups: Vec<usize>,
}

impl Detectors {
    /// Compiles the named built-ins (`*` for all) plus custom ones.
    pub fn new(names: &[String], custom: &[(String, String)]) -> Result<Self, DetectorError> {
        let mut chosen: Vec<&str> = Vec::new();
        for n in names {
            if n == "*" {
                chosen = BUILTIN.to_vec();
                break;
            }
            let builtin = BUILTIN
                .iter()
                .find(|b| **b == n.as_str())
                .ok_or_else(|| DetectorError::Unknown(n.clone()))?;
            chosen.push(builtin);
        }
        // Keep the built-in order: specific patterns before generic ones.
        chosen.sort_by_key(|n| BUILTIN.iter().position(|b| b == n));
        chosen.dedup();
        let mut parts = Vec::new();
        let mut all_names = Vec::new();
        for (name, re) in custom {
            Regex::new(re).map_err(|e| DetectorError::BadRegex {
                name: name.clone(),
                message: e.to_string(),
            })?;
            all_names.push(name.clone());
            parts.push(format!("({re})"));
        }
        for n in &chosen {
            all_names.push((*n).to_owned());
            parts.push(format!("({})", pattern(n)));
        }
        if parts.is_empty() {
            return Ok(Self {
                regex: None,
                names: Vec::new(),
                groups: Vec::new(),
            });
        }
        let combined = parts.join("|");
        let regex = regex::RegexBuilder::new(&combined)
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| DetectorError::BadRegex {
                name: "(combined)".into(),
                message: e.to_string(),
            })?;
        // Map each top-level alternative to its capture group: the group numbers of the
        // outer parentheses, skipping groups nested inside custom regexes.
        let mut groups = Vec::new();
        let mut next = 1;
        for p in &parts {
            groups.push(next);
            next += Regex::new(p).map(|r| r.captures_len() - 1).unwrap_or(1);
        }
        Ok(Self {
            regex: Some(regex),
            names: all_names,
            groups,
        })
    }

    /// The detector names, in match-priority order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `text` holds any validated secret; stops at the first.
    pub fn any(&self, text: &str) -> bool {
        let mut out = Vec::new();
        self.scan(text, &mut out, true);
        !out.is_empty()
    }

    /// Finds every validated secret in `text`, in order, non-overlapping.
    pub fn find(&self, text: &str, out: &mut Vec<Found>) {
        self.scan(text, out, false);
    }

    fn scan(&self, text: &str, out: &mut Vec<Found>, first_only: bool) {
        let Some(regex) = &self.regex else { return };
        let mut at = 0;
        while at <= text.len() {
            let Some(caps) = regex.captures_at(text, at) else {
                break;
            };
            let Some(whole) = caps.get(0) else { break };
            let detector = self
                .groups
                .iter()
                .position(|g| caps.get(*g).is_some())
                .unwrap_or(0);
            let (mut start, mut end) = (whole.start(), whole.end());
            if self.names[detector] == "aws_secret_key" {
                // The pattern includes one delimiter on each side; trim them.
                let m = whole.as_str();
                let lead = m
                    .find(|c: char| c.is_ascii_alphanumeric() || c == '/' || c == '+')
                    .unwrap_or(0);
                start += lead;
                end = start + 40.min(end - start);
            }
            let candidate = &text[start..end];
            if end > start && valid(&self.names[detector], candidate) {
                out.push(Found {
                    start,
                    end,
                    detector,
                });
                if first_only {
                    return;
                }
                at = end;
            } else {
                // Not a real secret: try again one character further.
                at = next_char(text, whole.start());
            }
        }
    }
}

fn next_char(text: &str, i: usize) -> usize {
    text[i..]
        .chars()
        .next()
        .map_or(text.len() + 1, |c| i + c.len_utf8())
}

/// Validation beyond the pattern.
fn valid(detector: &str, m: &str) -> bool {
    match detector {
        "credit_card" => credit_card(m),
        "iban" => iban(m),
        "us_ssn" => ssn(m),
        "ipv6" => {
            let addr = m.split('%').next().unwrap_or(m);
            addr.matches(':').count() >= 2 && addr.parse::<Ipv6Addr>().is_ok()
        }
        "aws_secret_key" => {
            m.len() == 40
                && m.bytes().any(|b| b.is_ascii_uppercase())
                && m.bytes().any(|b| b.is_ascii_lowercase())
                && m.bytes().any(|b| b.is_ascii_digit())
        }
        _ => true,
    }
}

fn credit_card(m: &str) -> bool {
    let digits: Vec<u32> = m.chars().filter_map(|c| c.to_digit(10)).collect();
    let n = digits.len();
    // 13-digit Visa numbers are long retired, and every 13-digit epoch-millisecond timestamp
    // would be a candidate: not cards. 17-19 digit cards are rare, while 19-digit
    // epoch-nanosecond timestamps and snowflake ids are everywhere: only when written with
    // separators.
    let separated = m.contains([' ', '-']);
    if !(14..=19).contains(&n) || (n >= 17 && !separated) {
        return false;
    }
    // Issuer prefixes and lengths: Visa 4 (16, 19), Mastercard 51-55 / 2221-2720 (16),
    // Amex 34/37 (15), Discover 6011/65/644-649 (16-19), JCB 3528-3589 (16-19),
    // Diners 300-305/36/38 (14).
    let prefix = |k: usize| digits.iter().take(k).fold(0u32, |a, d| a * 10 + d);
    let ok_issuer = match digits[0] {
        4 => matches!(n, 16 | 19),
        5 => (51..=55).contains(&prefix(2)) && n == 16,
        2 => (2221..=2720).contains(&prefix(4)) && n == 16,
        3 => {
            (matches!(prefix(2), 34 | 37) && n == 15)
                || ((3528..=3589).contains(&prefix(4)) && n >= 16)
                || (((300..=305).contains(&prefix(3)) || matches!(prefix(2), 36 | 38)) && n == 14)
        }
        6 => (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3))) && n >= 16,
        _ => false,
    };
    ok_issuer && luhn(&digits)
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban(m: &str) -> bool {
    let s: String = m.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    let rearranged = s[4..].chars().chain(s[..4].chars());
    let mut rem: u64 = 0;
    for c in rearranged {
        let v = match c {
            '0'..='9' => c as u64 - '0' as u64,
            'A'..='Z' => c as u64 - 'A' as u64 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn(m: &str) -> bool {
    let mut parts = m.split('-');
    let (Some(a), Some(g), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    a != "000" && a != "666" && !a.starts_with('9') && g != "00" && s != "0000"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_found(text: &str) -> Vec<String> {
        let d = Detectors::new(&["*".to_owned()], &[]).unwrap();
        let mut out = Vec::new();
        d.find(text, &mut out);
        out.iter().map(|f| d.names()[f.detector].clone()).collect()
    }

    #[test]
    fn each_detector_finds_its_kind() {
        let cases = [
            ("mail jane.doe+x@example.co.uk now", "email"),
            ("card 4111 1111 1111 1111 ok", "credit_card"),
            ("card 4111-1111-1111-1111", "credit_card"),
            ("amex 378282246310005", "credit_card"),
            ("t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
            ("Authorization: Bearer abcdefghijklmnop", "auth_header"),
            ("key AKIAIOSFODNN7EXAMPLE", "aws_access_key_id"),
            ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_key"),
            ("sk-proj-abcdefghijklmnopqrstuvwx", "openai_key"),
            ("sk-ant-api03-abcdefghijklmnopqrstuvwx", "anthropic_key"),
            ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github_token"),
            ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_token"),
            ("xoxb-123456789012-abcdefghij", "slack_token"),
            ("AIzaSyA-abcdefghijklmnopqrstuvwxyz012345", "google_api_key"),
            ("sk_live_abcdefghijklmnop1234", "stripe_key"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "pem_private_key"),
            ("from 192.168.10.254 port", "ipv4"),
            ("from 2001:db8::8a2e:370:7334 port", "ipv6"),
            ("call +14155552671 today", "phone_e164"),
            ("ssn 123-45-6789", "us_ssn"),
            ("iban GB82 WEST 1234 5698 7654 32", "iban"),
            ("iban DE89370400440532013000", "iban"),
        ];
        for (text, want) in cases {
            let got = names_found(text);
            assert_eq!(got, vec![want.to_owned()], "{text:?}");
        }
    }

    #[test]
    fn benign_lookalikes_are_not_flagged() {
        for text in [
            "ts 1763900000000 and 1700000000123",
            "uuid 0193a2b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b",
            "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "version 1.24.3 and v2.0.0-rc.1",
            "price $1,234.56 and 19.99 EUR",
            "took 1500 ms; 12:30:45",
            "date 2026-11-23",
            "card-like 4111 1111 1111 1112",
            "ssn-like 000-12-3456 666-12-3456",
            "iban-like GB82 WEST 1234 5698 7654 33",
        ] {
            assert!(
                names_found(text).is_empty(),
                "{text:?} -> {:?}",
                names_found(text)
            );
        }
    }

    #[test]
    fn unknown_detectors_and_bad_regexes_are_errors() {
        assert!(matches!(
            Detectors::new(&["nope".into()], &[]),
            Err(DetectorError::Unknown(_))
        ));
        assert!(matches!(
            Detectors::new(&[], &[("x".into(), "(".into())]),
            Err(DetectorError::BadRegex { .. })
        ));
        let d = Detectors::new(&[], &[("ticket".into(), "TKT-[0-9]{6}".into())]).unwrap();
        let mut out = Vec::new();
        d.find("see TKT-123456", &mut out);
        assert_eq!(out.len(), 1);
    }
}
