//! Dotted path globs: `payload.args.*`, `payload.**.password`, `**.authorization`.

/// One compiled glob segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// A key (lowercased) or array index.
    Lit(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: zero or more segments.
    Any,
}

/// A compiled path glob; keys match case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    segs: Vec<Seg>,
    /// Whether any segment is `**` (else lengths must be equal).
    has_any: bool,
}

impl PathGlob {
    /// Compiles `payload.a.*.b` style text. `None` for an empty path or empty segment.
    pub fn parse(text: &str) -> Option<Self> {
        let mut segs = Vec::new();
        for part in text.split('.') {
            segs.push(match part {
                "" => return None,
                "*" => Seg::One,
                "**" => Seg::Any,
                lit => Seg::Lit(lit.to_ascii_lowercase()),
            });
        }
        let has_any = segs.contains(&Seg::Any);
        Some(Self { segs, has_any })
    }

    /// Whether the path (segments, keys as they appear) matches.
    pub fn matches<S: AsRef<str>>(&self, path: &[S]) -> bool {
        if !self.has_any && self.segs.len() != path.len() {
            return false;
        }
        matches(&self.segs, path)
    }

    /// Whether some extension of `prefix` could match: used to keep walking into containers
    /// in allow-list mode.
    pub fn may_match_below<S: AsRef<str>>(&self, prefix: &[S]) -> bool {
        prefix_ok(&self.segs, prefix)
    }
}

fn seg_eq(lit: &str, key: &str) -> bool {
    lit.len() == key.len() && lit.eq_ignore_ascii_case(key)
}

fn matches<S: AsRef<str>>(segs: &[Seg], path: &[S]) -> bool {
    match segs.split_first() {
        None => path.is_empty(),
        Some((Seg::Any, rest)) => (0..=path.len()).any(|i| matches(rest, &path[i..])),
        Some((seg, rest)) => match path.split_first() {
            None => false,
            Some((head, tail)) => {
                let ok = match seg {
                    Seg::One => true,
                    Seg::Lit(l) => seg_eq(l, head.as_ref()),
                    Seg::Any => true,
                };
                ok && matches(rest, tail)
            }
        },
    }
}

fn prefix_ok<S: AsRef<str>>(segs: &[Seg], prefix: &[S]) -> bool {
    match (segs.split_first(), prefix.split_first()) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some((Seg::Any, _)), Some(_)) => true,
        (Some((seg, rest)), Some((head, tail))) => {
            let ok = match seg {
                Seg::One | Seg::Any => true,
                Seg::Lit(l) => seg_eq(l, head.as_ref()),
            };
            ok && prefix_ok(rest, tail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, path: &str) -> bool {
        let p: Vec<&str> = path.split('.').collect();
        PathGlob::parse(glob).unwrap().matches(&p)
    }

    #[test]
    fn globs_match_as_documented() {
        assert!(m("payload.args.*", "payload.args.token"));
        assert!(!m("payload.args.*", "payload.args.a.b"));
        assert!(m("payload.**.password", "payload.password"));
        assert!(m("payload.**.password", "payload.a.b.0.Password"));
        assert!(m("**.authorization", "payload.headers.Authorization"));
        assert!(!m("**.authorization", "payload.headers.auth"));
        assert!(m(
            "payload.messages.*.content",
            "payload.messages.3.content"
        ));
        assert!(PathGlob::parse("a..b").is_none());
        let g = PathGlob::parse("payload.args.token").unwrap();
        assert!(g.may_match_below(&["payload", "args"]));
        assert!(!g.may_match_below(&["payload", "other"]));
    }
}
