//! Text for people: numbers as they are written (`93,322`, `1 step`) and
//! serde's complaints about a value (a layer's field in a file, a parameter
//! typed on the page, the training section) in words that say what the field
//! expects, never a Rust type or enum name. Used by the spec, which imports
//! no other part of the engine, and by every message after it.

/// A whole number with its thousands grouped, as people write one: `93,322`,
/// `29,183,670`.
pub fn format_count(n: impl Into<u128>) -> String {
    let n: u128 = n.into();
    group_thousands(&n.to_string())
}

/// `n` and the noun, singular for one: `1 step`, `2 steps`, `1,000 steps`.
pub fn count_of(n: usize, noun: &str) -> String {
    format!("{} {noun}{}", format_count(n as u64), if n == 1 { "" } else { "s" })
}

/// A figure (a loss, which may be far past any integer type) rounded to a
/// whole number, its thousands grouped: `896,760`.
pub fn format_whole(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    format!("{}{}", if v < 0.0 && digits != "0" { "-" } else { "" }, group_thousands(&digits))
}

/// `digits` (ASCII digits) with a comma before each group of three from the right.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a serde type name expects, in words.
fn expected(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "usize" | "u8" | "u16" | "u32" | "u64" => "a whole number such as 3",
        "isize" | "i8" | "i16" | "i32" | "i64" => "a whole number such as 28 (or -1)",
        "f32" | "f64" => "a number such as 0.5",
        "a boolean" | "bool" => "true or false",
        "a string" | "string" => "a word",
        "a sequence" | "an array" => "a list such as [28, 28]",
        _ => return None,
    })
}

/// The value serde quotes (`string "abc"`, ``floating point `2.5` ``), as the
/// user typed it.
fn given(what: &str) -> String {
    if let Some(s) = what.strip_prefix("string ") {
        return s.to_string();
    }
    if let Some((_, v)) = what.split_once('`') {
        return v.trim_end_matches('`').to_string();
    }
    match what {
        "sequence" => "a list".into(),
        "map" => "an object".into(),
        "null" => "nothing".into(),
        other => other.to_string(),
    }
}

/// serde's list of names (``one of `a`, `b` ``, `` `a` or `b` ``, `` `a` ``) as `a, b`.
fn listed(names: &str) -> String {
    crate::escape::printable(&names.trim_start_matches("one of ").replace("` or `", "`, `").replace('`', ""))
}

/// serde_json's message about a value (`e.to_string()` of a `from_value`
/// error, no position) in words: what was expected and what came. Messages
/// it does not know stay as they are. The user's text in it is made
/// printable (`escape::printable`).
pub fn value_error(raw: &str) -> String {
    let user = |v: &str| crate::escape::printable(v.trim_matches('`'));
    if let Some(rest) = raw.strip_prefix("data did not match any variant of untagged enum ") {
        return match rest {
            "Size2" => "expects a whole number such as 3, or [height, width] such as [3, 5]".into(),
            _ => "expects another kind of value".into(),
        };
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((what, ty)) = raw.strip_prefix(prefix).and_then(|r| r.rsplit_once(", expected ")) {
            let want = match (expected(ty), prefix, ty) {
                (Some(w), "invalid value: ", "usize" | "u8" | "u16" | "u32" | "u64") => format!("{w} (0 or more)"),
                (Some(w), ..) => w.to_string(),
                (None, ..) => ty.to_string(),
            };
            return format!("expects {want}, got {}", crate::escape::printable(&given(what)));
        }
    }
    // serde's names come last: split at the last ", expected " (the user's
    // text before it may hold one).
    if let Some((v, names)) = raw.strip_prefix("unknown variant ").and_then(|r| r.rsplit_once(", expected ")) {
        return format!("unknown value \"{}\"; choose one of {}", user(v), listed(names));
    }
    if let Some((f, names)) = raw.strip_prefix("unknown field ").and_then(|r| r.rsplit_once(", expected ")) {
        return format!("unknown field \"{}\"; expected one of {}", user(f), listed(names));
    }
    if let Some(f) = raw.strip_prefix("missing field ") {
        return format!("needs \"{}\"", user(f));
    }
    crate::escape::printable(raw)
}
