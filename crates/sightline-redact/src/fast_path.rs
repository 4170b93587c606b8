//! The clean-event fast path: most events carry nothing to redact, and proving that from the
//! payload's JSON text in one pass is several times cheaper than building and walking a JSON
//! tree. It answers only "certainly clean" or "walk it"; the walk stays the one place that
//! rewrites anything.

use sightline_event::{Event, Kind, Payload};
use smol_str::SmolStr;

use crate::config::{ActionKind, Mode};
use crate::policy::Policy;

impl Policy {
    /// Whether the full walk would leave this event untouched, decided from the payload's JSON
    /// text in one pass plus one detector search, instead of building and walking a JSON tree.
    ///
    /// Conservative: any doubt sends the event to the full walk. Doubt is an escape sequence
    /// (detectors on raw text could miss an escaped secret), a URL (query strings are decoded
    /// by the walk), a string that starts like JSON (the walk parses it), nesting or size near
    /// the limits, a field the model marks sensitive that no keep/scan rule covers, or any
    /// detector match anywhere in the text or the agent's name.
    pub(crate) fn is_clean(&self, event: &Event, buf: &mut Vec<u8>) -> bool {
        if !self.fast_path || matches!(event.payload, Payload::Raw(_)) || event.redaction.is_some()
        {
            return false;
        }
        buf.clear();
        event.payload.write_json(buf);
        if buf.len() > self.max_bytes {
            return false;
        }
        let kind = event.kind();
        let (mut depth, mut max_depth) = (0usize, 0usize);
        let (mut in_str, mut str_start) = (false, 0usize);
        let mut expect_key = false;
        for (i, &b) in buf.iter().enumerate() {
            if in_str {
                match b {
                    b'\\' => return false,
                    b'"' => {
                        in_str = false;
                        if expect_key && depth == 1 {
                            let key = &buf[str_start..i];
                            if !self.sensitive_key_ok(kind, key) {
                                return false;
                            }
                            expect_key = false;
                        }
                    }
                    b'{' | b'[' | b' ' | b'\t' if i == str_start => return false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => {
                    in_str = true;
                    str_start = i + 1;
                }
                b'{' | b'[' => {
                    depth += 1;
                    max_depth = max_depth.max(depth);
                    expect_key = b == b'{' && depth == 1;
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                b',' if depth == 1 => expect_key = true,
                _ => {}
            }
        }
        if max_depth + 1 >= self.max_depth {
            return false;
        }
        let Ok(text) = std::str::from_utf8(buf) else {
            return false;
        };
        if text.contains("://") {
            return false;
        }
        !self.detectors.any(text)
            && !self.detectors.any(&event.agent.name)
            && !event.agent.name.contains("://")
    }

    /// Whether a top-level payload key is harmless: not a sensitive field, or one a keep/scan
    /// rule covers (the fast path only runs for policies whose rules are keep or scan). In
    /// allowlist mode a key the model does not know, or a sensitive one no rule covers, is
    /// dropped by the walk, so it is not harmless.
    fn sensitive_key_ok(&self, kind: Kind, key: &[u8]) -> bool {
        let allowlist = self.mode == Mode::Allowlist;
        let Some(spec) = kind.fields().iter().find(|f| f.name.as_bytes() == key) else {
            return !allowlist;
        };
        if !spec.sensitive
            || (!allowlist && matches!(self.sensitive.action, ActionKind::Keep | ActionKind::Scan))
        {
            return true;
        }
        let path = [SmolStr::new_static("payload"), SmolStr::new(spec.name)];
        self.rules.iter().any(|(_, g, _)| g.matches(&path))
    }
}
