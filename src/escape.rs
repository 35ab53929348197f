//! The one place where text from a spec, a link or a file (a model's name above
//! all) is made safe for where it goes: generated Python, Markdown, a file or
//! folder name. Each target has one function; generated code never pastes user
//! text in any other way.
//!
//! The rule for each: the output cannot end the construct it sits in (a string,
//! a docstring, a comment, a heading, a path component), whatever the input:
//! quotes of every kind, backslashes, newlines, NUL and other control
//! characters, non-ASCII, `../`, or text of any length.

/// The most characters of user text kept in a generated name or heading.
pub const MAX_TEXT_CHARS: usize = 120;

/// The body of a double-quoted Python string literal for `text` (without the
/// quotes): printable ASCII stays as it is except `\` and `"`, which are
/// escaped; every other character (newlines, NUL, non-ASCII) becomes a `\x`,
/// `\u` or `\U` escape. Valid inside `"..."`, inside a `"""` docstring (an
/// escaped quote cannot close it) and, having no line break, inside a `#`
/// comment. Python reads it back as `text` exactly.
pub fn python_str_body(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x1_0000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out
}

/// `text` as a Python string literal, quotes included (see `python_str_body`).
pub fn python_str(text: &str) -> String {
    format!("\"{}\"", python_str_body(text))
}

/// `text` shortened to `MAX_TEXT_CHARS` characters (an ellipsis marks a cut).
pub fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT_CHARS {
        return text.to_string();
    }
    let mut s: String = text.chars().take(MAX_TEXT_CHARS - 1).collect();
    s.push('…');
    s
}

/// `text` to quote in a message (a terminal, the page): shortened, and every
/// control character (escape sequences, line breaks, NUL) written as an escape
/// such as `\u{1b}`, so user text cannot restyle a terminal or break a line.
pub fn printable(text: &str) -> String {
    shorten(text).chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// `text` for one line of a docstring or a comment in generated Python: shortened,
/// then escaped as `python_str_body` (so `"""`, a trailing backslash or a line
/// break cannot end the docstring or the comment).
pub fn python_doc_text(text: &str) -> String {
    python_str_body(&shorten(text))
}

/// `text` as literal text on one line of Markdown (a heading or a paragraph):
/// control characters and line breaks become spaces, and every character with a
/// meaning in CommonMark (emphasis, links, HTML, code, headings, tables) is
/// backslash-escaped, so no markup or HTML from a model's name takes effect.
pub fn markdown_text(text: &str) -> String {
    let mut out = String::new();
    for c in shorten(text).chars() {
        match c {
            c if c.is_control() => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '+' | '-' | '.' | '!'
            | '|' | '~' | '&' | '"' | '\'' | '=' | ':' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Names Windows keeps for devices, whatever follows them.
const DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A file or folder name made from `text` (a model's name): ASCII letters,
/// digits, `-` and `_` only (runs of anything else become one `-`), no leading
/// or trailing `-`, at most 64 characters; `fallback` when nothing is left. It
/// can name no other folder (`..`, `/`, `\`), no hidden file, no device
/// (`CON`, `nul`, `COM1`, ... get a `_`).
pub fn file_stem(text: &str, fallback: &str) -> String {
    let stem = stem_chars(text, fallback);
    if DEVICES.iter().any(|d| d.eq_ignore_ascii_case(stem.split('-').next().unwrap_or(""))) {
        format!("_{stem}")
    } else {
        stem
    }
}

fn stem_chars(text: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(64).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        fallback.to_string()
    } else {
        out
    }
}

/// An identifier for a Keras model's `name=` (letters, digits and `_`, not
/// starting with a digit), or `fallback`.
pub fn identifier(text: &str, fallback: &str) -> String {
    let stem = file_stem(text, fallback).replace('-', "_");
    if stem.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{stem}")
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_escapes_everything_that_could_end_a_string() {
        assert_eq!(python_str("a\"\"\"b"), r#""a\"\"\"b""#);
        assert_eq!(python_str("C:\\Users\\x"), r#""C:\\Users\\x""#);
        assert_eq!(python_str("a\nb\0c"), r#""a\x0ab\x00c""#);
        assert_eq!(python_str("é😀"), r#""\xe9\U0001f600""#);
        assert_eq!(python_str("'ok'"), "\"'ok'\"");
    }

    #[test]
    fn names_cannot_leave_their_folder() {
        assert_eq!(file_stem("../../etc/passwd", "model"), "etc-passwd");
        assert_eq!(file_stem("..", "model"), "model");
        assert_eq!(file_stem("", "model"), "model");
        assert_eq!(file_stem("C:\\Users\\nina\\x", "model"), "C-Users-nina-x");
        assert_eq!(file_stem(&"a".repeat(500), "m").len(), 64);
        assert_eq!(identifier("2 layers", "model"), "_2_layers");
        assert_eq!(file_stem("con", "model"), "_con");
        assert_eq!(file_stem("NUL.txt", "model"), "_NUL-txt");
        assert_eq!(file_stem("console", "model"), "console");
        assert_eq!(printable("a\u{1b}[31m\nb"), "a\\u{1b}[31m\\nb");
    }

    #[test]
    fn markdown_keeps_text_literal() {
        assert_eq!(markdown_text("<script>x</script>\n# h"), "\\<script\\>x\\</script\\> \\# h");
        assert_eq!(markdown_text("[a](javascript:x)"), "\\[a\\]\\(javascript\\:x\\)");
    }
}
