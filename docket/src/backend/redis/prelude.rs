//! The shared Lua prelude, cut into its top-level items so that each script carries only
//! the ones it uses.
//!
//! Redis runs a script's whole text on every call, so each `local function` of the
//! prelude is built again each time: with all of its ~40 items, 3 µs of every call
//! went to helpers the script never touched.
//!
//! An item starts at a line with no indent that begins `local ` or `if `, with the
//! comment lines right above it; it runs to the next item. It defines the names its
//! first line declares (`local function name`, `local a, b = ...`, `local name`); an
//! item that defines none (`if redis.replicate_commands ...`) is always kept. A script
//! keeps an item when its text, or the text of an item it keeps, names what the item
//! defines. A Lua local is only visible after its declaration, so an item can only use
//! items above it, and one pass from the last item up finds them all.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The prelude's text (see prelude.lua).
pub(super) const PRELUDE: &str = include_str!("lua/prelude.lua");

/// One top-level item of the prelude.
#[derive(Debug)]
struct Item {
    /// Its text: leading comments, declaration and body, up to the next item.
    text: &'static str,
    /// The names it declares.
    defines: Vec<&'static str>,
}

/// The prelude's items in order (the text before the first, comments only, is left out).
static ITEMS: LazyLock<Vec<Item>> = LazyLock::new(|| split(PRELUDE));

/// Cuts `text` into items (see the module's header).
fn split(text: &'static str) -> Vec<Item> {
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len();
            Some((at, line))
        })
        .collect();
    let starts_item = |line: &str| line.starts_with("local ") || line.starts_with("if ");
    let mut starts = Vec::new();
    for (index, (_, line)) in lines.iter().enumerate() {
        if starts_item(line) {
            let mut first = index;
            while first > 0 && lines[first - 1].1.starts_with("--") {
                first -= 1;
            }
            starts.push((lines[first].0, line));
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(index, &(at, declaration))| {
            let end = starts.get(index + 1).map_or(text.len(), |next| next.0);
            Item {
                text: &text[at..end],
                defines: declared(declaration),
            }
        })
        .collect()
}

/// The names a declaration line declares: `local function f(...)` declares `f`;
/// `local a, b = ...` and `local a` declare `a` (and `b`); anything else none.
fn declared(line: &str) -> Vec<&str> {
    let Some(rest) = line.strip_prefix("local ") else {
        return Vec::new();
    };
    if let Some(function) = rest.strip_prefix("function ") {
        return words(function).take(1).collect();
    }
    let names = rest.split_once('=').map_or(rest, |(names, _)| names);
    names
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect()
}

/// The identifiers (and numbers) in `text`: its runs of letters, digits and `_`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
}

/// Which items a script whose own text is `parts` needs, by index, in order.
pub(super) fn needed_by(parts: &[&str]) -> Vec<usize> {
    let mut wanted: HashSet<&str> = parts.iter().flat_map(|part| words(part)).collect();
    let mut kept = Vec::new();
    for (index, item) in ITEMS.iter().enumerate().rev() {
        if item.defines.is_empty() || item.defines.iter().any(|name| wanted.contains(name)) {
            wanted.extend(words(item.text));
            kept.push(index);
        }
    }
    kept.reverse();
    kept
}

/// The text of the items `kept` (as [`needed_by`] gives them), in order.
pub(super) fn pieces(kept: &[usize]) -> impl Iterator<Item = &str> {
    kept.iter().map(|&index| -> &str { ITEMS[index].text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_items_are_the_whole_prelude_after_its_header() {
        let items: String = ITEMS.iter().map(|item| item.text).collect();
        assert!(PRELUDE.ends_with(&items));
        let header = &PRELUDE[..PRELUDE.len() - items.len()];
        assert!(
            header
                .lines()
                .all(|line| line.is_empty() || line.starts_with("--")),
            "{header}"
        );
        assert!(ITEMS.len() > 30, "{} items", ITEMS.len());
    }

    /// The cut relies on the prelude's layout: at the top level only declarations,
    /// `if` blocks, the `end` closing them, comments and blank lines; a declaration on
    /// one line. (A bare statement would be glued to the item above and dropped with it.)
    #[test]
    fn the_prelude_keeps_the_layout_the_cut_relies_on() {
        for line in PRELUDE.lines() {
            let top_level = !line.starts_with([' ', '\t']);
            if top_level && !line.is_empty() && !line.starts_with("--") {
                assert!(
                    line.starts_with("local ") || line.starts_with("if ") || line == "end",
                    "a top-level line the cut does not know: {line}"
                );
            }
            if line.starts_with("local ") && !line.starts_with("local function ") {
                assert!(
                    !line.trim_end().ends_with(','),
                    "a declaration over two lines: {line}"
                );
            }
        }
    }

    #[test]
    fn declarations_name_what_they_declare() {
        assert_eq!(declared("local function int(n)\n"), ["int"]);
        assert_eq!(declared("local function f() return 1 end\n"), ["f"]);
        assert_eq!(
            declared("local rfc3339_ms, rfc3339_text\n"),
            ["rfc3339_ms", "rfc3339_text"]
        );
        assert_eq!(declared("local floor = math.floor\n"), ["floor"]);
        assert_eq!(declared("local listening\n"), ["listening"]);
        assert!(declared("if redis.replicate_commands then\n").is_empty());
        let defined = |name: &str| {
            ITEMS
                .iter()
                .filter(|item| item.defines.contains(&name))
                .count()
        };
        for name in [
            "PREFIX",
            "GROUP",
            "conclude",
            "wake_scope",
            "PARKED_FOREVER",
            "script_now",
        ] {
            assert_eq!(defined(name), 1, "{name}");
        }
    }

    #[test]
    fn a_script_gets_what_it_names_and_what_that_names_in_turn() {
        let text = |kept: &[usize]| pieces(kept).collect::<String>();
        let nothing = text(&needed_by(&["return 1"]));
        assert!(nothing.contains("redis.replicate_commands"), "{nothing}");
        assert!(!nothing.contains("local PREFIX"), "{nothing}");

        let concluding = text(&needed_by(&["conclude(KEYS[1], 'FAILED', 1, 0, '', 0)"]));
        for needed in [
            "local function conclude",
            "local function publish_state",
            "local function listened",
            "local function now_ms",
            "local script_now",
            "local function rfc3339",
            "local function format_rfc3339",
            "local floor",
            "local function record_key",
            "local PREFIX",
        ] {
            assert!(concluding.contains(needed), "{needed} missing");
        }
        for unneeded in [
            "local function wake_scope",
            "local function place",
            "local GROUP",
        ] {
            assert!(!concluding.contains(unneeded), "{unneeded} kept");
        }
    }

    /// Whatever a script's body or one of its items names of the items above it, the
    /// script keeps: checked forward over every script, apart from how `needed_by`
    /// finds it.
    #[test]
    fn every_script_keeps_each_item_it_names() {
        let scripts = &*super::super::scripts::SCRIPTS;
        for script in scripts.all() {
            let (kept, own) = (script.prelude_items(), script.own_text());
            let body_at = ITEMS.len();
            let texts = kept
                .iter()
                .map(|&index| (index, ITEMS[index].text))
                .chain(own.map(|text| (body_at, text)));
            for (at, text) in texts {
                for word in words(text) {
                    for (index, item) in ITEMS[..at].iter().enumerate() {
                        assert!(
                            !item.defines.contains(&word) || kept.contains(&index),
                            "`{word}` is named but its item is not kept:\n{}",
                            script.code()
                        );
                    }
                }
            }
        }
    }
}
