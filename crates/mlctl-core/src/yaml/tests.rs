//! Tests of the YAML loader: behaviour, and equivalence with the serde-saphyr-based oracle.

use super::*;

#[path = "../../tests/support/mutate.rs"]
mod mutate;

fn parse_one(text: &str) -> Node {
    let mut docs = parse_documents(text).expect("parses");
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

#[test]
fn scalars_resolve_like_kubernetes() {
    let n = parse_one("a: 1\nb: \"1\"\nc: yes\nd: 0.5\ne: ~\nf: 500m\n");
    assert_eq!(n.get("a").map(|n| &n.value), Some(&Value::Int(1)));
    assert_eq!(n.get("b").map(|n| &n.value), Some(&Value::Str("1".into())));
    assert_eq!(n.get("c").map(|n| &n.value), Some(&Value::Bool(true)));
    assert_eq!(n.get("d").map(|n| &n.value), Some(&Value::Float(0.5)));
    assert_eq!(n.get("e").map(|n| &n.value), Some(&Value::Null));
    assert_eq!(
        n.get("f").map(|n| &n.value),
        Some(&Value::Str("500m".into()))
    );
}

#[test]
fn positions_of_keys_and_values() {
    let n = parse_one("spec:\n  steps:\n    - name: a\n      run: [x, y]\n");
    let path = FieldPath::parse("spec.steps[0].run[1]");
    assert_eq!(
        n.locate(&path),
        Pos {
            line: 4,
            column: 16
        }
    );
    assert_eq!(
        n.locate(&FieldPath::parse("spec.steps[0].run")),
        Pos { line: 4, column: 7 }
    );
    // a missing field is reported at its nearest existing parent
    assert_eq!(
        n.locate(&FieldPath::parse("spec.steps[0].missing")),
        Pos { line: 3, column: 7 }
    );
}

#[test]
fn multiple_documents_skip_empty_ones() {
    let docs =
        parse_documents("---\n# only a comment\n---\na: 1\n---\nb: 2\n---\n").expect("parses");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1].pos.line, 6);
}

#[test]
fn duplicate_keys_are_errors_with_location() {
    let err = parse_documents("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
    assert_eq!(err.pos, Pos { line: 3, column: 1 });
    assert_eq!(err.code, "duplicate-key");
    assert_eq!(
        err.message,
        "duplicate key `a`: each key may appear once in a mapping"
    );
}

#[test]
fn syntax_errors_have_location() {
    let err = parse_documents("a: [1, 2\nb: 3\n").expect_err("syntax");
    assert_eq!(err.pos.line, 2);
}

#[test]
fn keys_are_taken_as_written() {
    let n = parse_one("n: 1\nyes: 2\non: 3\n10: 4\n");
    let keys: Vec<&str> = n
        .as_map()
        .expect("map")
        .iter()
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(keys, ["n", "yes", "on", "10"]);
}

#[test]
fn comments_are_skipped_everywhere() {
    let docs = parse_documents(
        "# head
a: 1 # trailing
b: # before a block
  - x # item
  # between
  - z
---
# only
c: 'q' # end
",
    )
    .expect("parses");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].to_json().to_string(), r#"{"a":1,"b":["x","z"]}"#);
    assert_eq!(
        docs[0].at(&FieldPath::parse("b[1]")).map(|n| n.pos.line),
        Some(6)
    );
    assert_eq!(docs[1].to_json().to_string(), r#"{"c":"q"}"#);
}

#[test]
fn to_json_keeps_order_and_types() {
    let n = parse_one("z: 1\na: [true, x, 1.5]\n");
    assert_eq!(n.to_json().to_string(), r#"{"z":1,"a":[true,"x",1.5]}"#);
}

#[test]
fn alias_bombs_fail_with_a_clear_error() {
    // "billion laughs": nine levels of nine aliases would expand to 9^9 nodes
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(", ");
        text.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    let err = parse_documents(&text).expect_err("refused");
    assert_eq!(err.code, "yaml-syntax");
    assert!(
        err.message.contains("alias bomb"),
        "unclear message: {}",
        err.message
    );
    assert!(err.pos.line >= 6, "reported at {}", err.pos);
    // a bomb spread over many documents, each within bounds, is refused too
    let ten = |x: &str| [x; 10].join(", ");
    let doc = format!(
        "a: &a [{}]\nb: &b [{}]\nc: &c [{}]\nd: [{}]\n---\n",
        ten("x"),
        ten("*a"),
        ten("*b"),
        ten("*c")
    );
    let spread = doc.repeat(100);
    let err = parse_documents(&spread).expect_err("refused");
    assert!(err.message.contains("alias bomb"), "{}", err.message);
}

#[test]
fn aliases_within_the_budget_expand() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    text.push_str("b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n");
    text.push_str("c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n");
    let doc = parse_one(&text);
    let c = doc.get("c").and_then(Node::as_seq).expect("c");
    assert_eq!(c.len(), 10);
    assert_eq!(c[9].as_seq().map(<[Node]>::len), Some(10));
    // copies are where the alias is
    assert_eq!(
        c[9].pos,
        Pos {
            line: 3,
            column: 41
        }
    );
    assert_eq!(
        c[9].as_seq().map(|s| s[0].pos),
        Some(Pos {
            line: 3,
            column: 41
        })
    );
}

#[test]
fn large_streams_are_not_limited() {
    // serde-saphyr refused more than 1,024 documents or 250,000 nodes per stream
    let docs = "kind: ConfigMap\ndata: {a: b}\n---\n".repeat(2_000);
    assert_eq!(parse_documents(&docs).expect("parses").len(), 2_000);
    let mut big = String::from("items:\n");
    for i in 0..130_000 {
        big.push_str(&format!("  - {i}\n"));
    }
    let doc = parse_one(&big);
    assert_eq!(
        doc.get("items").and_then(Node::as_seq).map(<[Node]>::len),
        Some(130_000)
    );
}

/// The new parser against the serde-saphyr-based one it replaces (`oracle`), on every YAML
/// file of the repository and on generated and mutated YAML: same trees, positions and errors,
/// apart from the differences listed in [`as_now`].
mod equivalence {
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::super::oracle;
    use super::*;

    /// The oracle's result as the new parser reports it. The differences are deliberate:
    /// - messages that spoke of serde-saphyr's or Rust's API (`use Option<String>`,
    ///   `set DuplicateKeyPolicy in Options`, `weak recursion types`, `configured policy`,
    ///   `ignore_binary_tag_for_string`) now say what is wrong in the YAML;
    /// - a duplicate key that is not text (`!!int 1` after `1`) is a `duplicate-key`
    ///   diagnostic like any other duplicate, not a syntax error;
    /// - exceeding the nesting depth reads as English rather than `Depth { depth: 65 }`.
    ///
    /// serde-saphyr's limits on the size of a stream (1,024 documents, 250,000 nodes,
    /// 1,000,000 events, 50,000 aliases, 64 MiB of scalars) and its alias/anchor ratio
    /// heuristic are not kept: they refused large but valid inputs. Alias bombs are stopped by
    /// the alias budget instead (see `alias_bombs_fail_with_a_clear_error`). Random inputs
    /// here are far below every limit, so a budget error from the oracle fails the test.
    fn as_now(result: Result<Vec<Node>, SyntaxError>) -> Result<Vec<Node>, SyntaxError> {
        result.map_err(|mut e| {
            let m = e.message.as_str();
            let renamed = if m == "cannot deserialize null into string; use Option<String>" {
                Some("a mapping key cannot be null; quote it if it is meant as text".to_string())
            } else if m.starts_with("!!binary scalar is not valid UTF-8") {
                Some("!!binary scalar is not valid UTF-8 text".to_string())
            } else if m == "recursive references require weak recursion types" {
                Some("an alias cannot refer to a node that contains it".to_string())
            } else if let Some(rest) = m.strip_prefix("non-finite float ") {
                rest.strip_suffix(" rejected by the configured policy").map(|v| {
                    format!(
                        "non-finite float {v} is not allowed: JSON and Kubernetes have no infinity or NaN"
                    )
                })
            } else if m == "duplicate mapping key, set DuplicateKeyPolicy in Options if acceptable"
            {
                e.code = "duplicate-key";
                Some("duplicate key: each key may appear once in a mapping".to_string())
            } else if m.starts_with("budget breached: Depth") {
                Some("more than 64 levels of nested mappings and sequences".to_string())
            } else {
                None
            };
            if let Some(r) = renamed {
                e.message = r;
            }
            e
        })
    }

    /// When the fast reader reads `text`, asserts that it makes granit-parser's events at the
    /// same places; whether it read it.
    fn same_events(text: &str) -> bool {
        let Some(fast) = fast::scan(text) else {
            return false;
        };
        let fast: Vec<String> = fast
            .iter()
            .map(|(ev, pos)| format!("{ev:?} at {pos}"))
            .collect();
        let mut parsed = events::Events::new(text);
        let mut granit = Vec::new();
        loop {
            match parsed.next() {
                Ok(Some(item)) => granit.push(format!("{:?} at {}", item.ev, item.pos)),
                Ok(None) => break,
                Err(e) => panic!(
                    "the fast reader read what granit-parser refuses ({e:?})\n--- input ---\n{text}"
                ),
            }
        }
        assert_eq!(fast, granit, "\n--- input ---\n{text}\n---");
        true
    }

    /// Asserts that both parsers agree on `text`, and the fast reader with granit-parser.
    fn same(text: &str) {
        same_events(text);
        let new = parse_documents(text);
        let old = as_now(oracle::parse_documents(text));
        if let Err(e) = &old {
            assert!(
                !e.message.starts_with("budget breached"),
                "the oracle hit a budget on a small input: {e:?}\n--- input ---\n{text}"
            );
        }
        assert_eq!(new, old, "\n--- input ---\n{text}\n---");
    }

    fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "target" | ".git" | "node_modules") {
                    yaml_files(&path, out);
                }
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                out.push(path);
            }
        }
    }

    fn repository_yaml() -> Vec<(PathBuf, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        yaml_files(&root, &mut files);
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
            .collect()
    }

    #[test]
    fn every_yaml_file_of_the_repository() {
        let files = repository_yaml();
        assert!(
            files.len() > 300,
            "found only {} YAML files: is the repository there?",
            files.len()
        );
        let (mut errors, mut fast) = (0, 0);
        for (path, text) in &files {
            fast += usize::from(same_events(text));
            let new = parse_documents(text);
            let old = as_now(oracle::parse_documents(text));
            errors += usize::from(new.is_err());
            assert_eq!(new, old, "{}", path.display());
        }
        // the corpus keeps files that do not parse: their errors are compared too
        assert!(
            errors > 0,
            "no file with a syntax error among {}",
            files.len()
        );
        // the fast reader is for manifests as people write them: most of these files
        assert!(
            fast * 10 >= files.len() * 8,
            "the fast reader read only {fast} of {} files",
            files.len()
        );
    }

    /// Inputs written by hand for rules that random YAML rarely reaches: where errors inside
    /// alias copies are reported, merged entries, keys that are not text, tags.
    const EDGE_CASES: &[&str] = &[
        // scalars
        "a: 0o17\nb: 0x1F\nc: 1_000\nd: 017\ne: 0X1F\nf: +12\ng: -0\nh: 0b101\ni: 1.5e3\n",
        "j: 12345678901234567890\nk: -12345678901234567890\nl: 1__0\nm: _1\nn: .5\no: 5.\n",
        "a: .inf\n",
        "a: -.Inf\n",
        "a: .nan\n",
        "a: -.nan\n",
        "a: 1e999\n",
        "a: inf\n",
        "a: y\nb: N\nc: oN\nd: Off\ne: TRUE\n",
        "a: |\n  text\n  more\nb: >-\n  folded\n",
        "a: 9223372036854775807\nb: 9223372036854775808\nc: -9223372036854775808\n",
        // tags
        "a: !!int abc\n",
        "a: !!int 0x10\n",
        "a: !!int -0x10\n",
        "a: !!int -x\n",
        "a: !!bool yes\n",
        "a: !!bool x\n",
        "a: !!bool \"\"\n",
        "a: !!float 1\n",
        "a: !!float x\n",
        "a: !!float .inf\n",
        "a: !!float -.nan\n",
        "a: !!str 1\n",
        "a: !!null x\n",
        "a: !!timestamp 2001-01-01\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!binary \"!!\"\n",
        "a: !!binary /w==\n",
        "a: !!str [a]\n",
        "a: !!seq {}\n",
        "a: !!map {b: 1}\n",
        "a: !!map x\n",
        "a: !foo bar\n",
        "a: !foo 12\n",
        "a: ! 12\n",
        "a: !foo ~\n",
        "a: !!merge x\n",
        "a: !!merge [1]\n",
        "a: !!value 5\n",
        "a: !!foo 5\n",
        "a: !time 5\n",
        "a: !!time 5\n",
        "a: !degrees 5\n",
        "a: !include x\n",
        "a: !include [x]\n",
        "a: !<tag:yaml.org,2002:str> 5\n",
        "a: !!str\n",
        "a: !\n",
        "a: ! ~\n",
        "a: !!null\n",
        "a: !!int\n",
        "a: !!bool\n",
        "a: !!float\n",
        "%TAG !e! tag:example.com,2000:\n---\na: !e!foo 5\n",
        "a: !!!int 5\n",
        // keys
        "~: 1\n",
        "null: 1\n",
        ": 1\n",
        "\"\": 1\n",
        "? [a]\n: 1\n",
        "? {a: 1}\n: 1\n",
        "!!int 1: a\n",
        "!!str 1: a\n",
        "!!str : 1\n",
        "!!null a: 1\n",
        "!!binary aGk= : 1\n",
        "!foo a: 1\n!foo a: 2\n",
        "!foo a: 1\n!bar a: 2\n",
        "a: 1\n!!str a: 2\n",
        "\"a\": 1\na: 2\n",
        "0x10: 1\n16: 2\n",
        "1: a\n!!int 1: b\n",
        "\"16\": a\n16: b\n",
        "? [a]\n: 1\n? [a]\n: 2\n",
        "? a\n: 1\n? b\n",
        "{a: 1, b}\n",
        "[a: 1, b]\n",
        // anchors and aliases
        "a: &x {b: [1, {c: d}]}\ne: *x\n",
        "a: &x yes\n*x : *x\n",
        "a: *x\n",
        "a: &x [*x]\n",
        "- &a\n  - *a\n",
        "a: &x\n",
        "a: &x\nb: *x\n",
        "- &a a\n- *a\n- &a b\n- *a\n",
        "a: &x 1\n---\nb: *x\n",
        "&x .inf : 1\nb: *x\n",
        "&x .inf : 1\nb: [*x]\n",
        "&x .inf : 1\nb: {c: [*x]}\n",
        "&x .inf : 1\n? [*x]\n: 2\n",
        "&x ~ : 1\n",
        "a: &x ~\n*x : 1\n",
        "a: &x [1]\n*x : 1\n",
        "&k yes : 1\nb: *k\n",
        "a: &x !!int 7\nb: {*x : 1}\n",
        "&a a: &b b\n*b : *a\n",
        "a: &a [&b {x: 1}, *b]\n",
        "- &x !!binary zz : 1\n- *x\n",
        "&x !!binary zz : 1\n",
        "&x !!binary zz : 1\nb: *x\n",
        "a: &x 5\nb: {*x : 1, 5: 2}\n",
        "&k a : {q: &v ~}\nm: {*v : 1}\n",
        "&d {a: [[[1]]]}: 1\n",
        // merge keys
        "base: &b\n  x: 1\n  y: 2\nm:\n  <<: *b\n  y: 3\n  z: 4\n",
        "m:\n  z: 0\n  <<: {x: 1, y: [2]}\n  w: 5\n",
        "m:\n  <<: [{x: 1}, {x: 2, y: 3}]\n",
        "a: &a {x: 1}\nb: &b {y: 2}\nm:\n  <<: [*a, *b]\n",
        "a: &a {x: 1}\nm: {<<: *a, x: 2, <<: {z: 1}}\n",
        "a: &a {x: 1, <<: {q: 9}}\nm: {<<: *a}\n",
        "<<: 1\n",
        "<<: [1]\n",
        "<<: ~\n",
        "<<: [~, {a: 1}]\n",
        "<<: [[{a: 1}], {b: 2}]\n",
        "a: &x 5\nm: {<<: *x}\n",
        "a: &x 5\nm: {<<: [*x]}\n",
        "m: {<<: {a: .inf}, b: 1, b: 2}\n",
        "m: {<<: {? [x] : .inf}}\n",
        "m: {<<: {a: .inf}}\n",
        "m: {<<: {a: &v .inf}, b: *v}\n",
        "m: {<<: {a: 1}, a: 2}\n",
        "m: {<<: {a: 1}, <<: {a: 2}}\n",
        "m: {<<: [{a: 1, a: 2}]}\n",
        "m: {<<: {a: 1, <<: {a: 3, b: 4}}}\n",
        "m: {<<: {? [a] : 1, ? [a] : 2}}\n",
        "m: {<<: {\"16\": a}, 16: b}\n",
        "m: {<<: {~: 1}}\n",
        "m: {<<: {!!int 1: 1}}\n",
        "a: &x {b: 1}\nc: {<<: *x, <<: *x}\n",
        "!!merge <<: {a: 1}\n",
        "\"<<\": {a: 1}\n",
        "!!merge x: 1\n",
        "&m {<<: [*m]}\n",
        "&m {a: {<<: *m}}\n",
        "&m {<<: {a: *m}}\n",
        "a: &a {x: &s 5}\nm: {<<: *a, y: *s}\n",
        "a: &a [{x: 1}, ~, [{y: 2}]]\nm: {<<: *a}\n",
        "a: &a {x: .inf}\n",
        "&k {x: 1} : 2\n",
        "a: &a {x: 1}\nm: {<<: [*a, 5]}\n",
        "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b}\n",
        // documents and syntax
        "a: [1, 2\n",
        "a: b: c\n",
        "a:\n  - b\n c: d\n",
        "\"a\n",
        "a: \"\\q\"\n",
        "\t a: 1\n",
        "%FOO bar\n---\na: 1\n",
        "a: 1\n...\n---\nb: 2\n",
        "--- |\n  x\n",
        "--- 12\n",
        "--- ~\n---\n",
        "---\n# only a comment\n---\na: 1\n---\nb: 2\n---\n",
        "",
        "# nothing\n",
        "--- !!str\n",
        "--- !foo ~\n",
        "--- .inf\n",
        "--- [*a]\n",
        "'quoted': 1\n\"double\": 2\n",
        "a: 1 # c\nb: # c\n  - x # c\n  # c\n  - z\n",
        // inputs on which the random tests below once found a difference
        "---\ndef0: &a\n  -\n    <<:\n      m: 1\nbody: a\n",
        "---\ndef0: &a\n  a:\n    a: y\nbody: a\n",
        "---\ndef0: &a\n  a:\n    <<:\n      -\n        m: 1\n      -\n        m: 1\nbody: a\n",
        "---\ndef0: &a {a: a}\ndef1: &a {a: {yes: [\"aaa\", a], <<: [{kind: {a: 017, name: name}}, {m: 1}], kind: 0o}}\nbody: [x, OFF]\n",
        "# a comment\ndef0: &a\n  x y:\n    - {}\n    - ~\n    - -2.5E-3\n    - False\nbody:\n  a:\n    x y: 1.5\n    a: a\n    b: a\n  x y: ~\n---\n# a comment\ndef0: &a\n  a:\n    - 12345678901234567890\ndef1: &b\n  - &a -2.5E-3\n  - y\n  -\n    a: \"1\"\n    c: \"\"\n    k2: *a\n    on: |\n      a\n      aaa\n      a\n  -\n    a: 1.5\ndef2: &a\n  name: yes\n  a: []\nbody: False\n",
    ];

    #[test]
    fn edge_cases() {
        for text in EDGE_CASES {
            same(text);
        }
    }

    /// Inputs that the fast reader reads (each is asserted to be read by it), for what it
    /// does itself: block scalars, folding of quoted scalars, escapes, empty values, compact
    /// and indentless sequences, flow collections, document markers.
    const FAST_CASES: &[&str] = &[
        "a: |\n  x\n\n  y\n\n\nb: 1\n",
        "a: |-\n  x\n   y\n\nb: |+\n  x\n\n\nc: >\n  x\n  y\n\n  z\nd: >-\n  x\n  y\n",
        "a: >+\n  x\n\n",
        "- |\n  # not a comment\n  x\t y\n- >\n  folded # too\n# a comment\n",
        "a: 'it''s\n  folded   \n\n\n  here'\nb: \"x\\ty\\u00e9\\x41\\\\ \\\"q\\\"\"\n",
        "a: \"one \\\n   two\n  three\"\n",
        "a:\nb: # empty\nc:    \nd:\n  - # empty\n  -\n  - x\n",
        "a:\n- x\n- y: 1\n  z:\n  - w\nb: 2\n",
        "- - a\n  - b\n- - c\n-   - d\n",
        "a: {b: c, d: [e, \"f\", 'g'], h: http://x:80/y}\nb: []\nc: {}\nd: [ x y , [z] ]\n",
        "\"quoted key\": 1\n'single key' : 2\nplain key: 3\n",
        "# c\n---\n---  # c\na: 1\n---\n- x\n",
        "x\n",
        "  a: 1\n  b:\n    c: 2\n",
        "a: -1\nb: ?x\nc: :y\nd: a:b\ne: a#b\nf: a #b\n",
        "k:\n  \"multi\n  line\"\n",
    ];

    #[test]
    fn fast_cases() {
        for text in FAST_CASES {
            assert!(
                fast::scan(text).is_some(),
                "not read by the fast reader: {text:?}"
            );
            same(text);
        }
    }

    #[test]
    fn deep_nesting_is_refused_at_the_same_place() {
        // serde-saphyr recurses once per level, with large frames in a debug build
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(deep_nesting)
            .expect("thread")
            .join()
            .expect("no panic");
    }

    fn deep_nesting() {
        for depth in [63, 64, 65, 70] {
            let flow = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
            same(&flow);
            let mut block = String::new();
            for level in 0..depth {
                block.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
            }
            block.push_str(&format!("{}leaf: 1\n", "  ".repeat(depth)));
            same(&block);
            let aliased = format!(
                "a: &d {}{}\nb: [[[*d]]]\n",
                "[".repeat(depth - 3),
                "]".repeat(depth - 3)
            );
            same(&aliased);
        }
    }

    /// A YAML node to render.
    #[derive(Debug, Clone)]
    enum Gen {
        Scalar(String),
        Seq(Vec<Gen>),
        Map(Vec<(Gen, Gen)>),
        Alias(&'static str),
        /// An anchor and/or a tag on a node.
        Props(Option<&'static str>, Option<&'static str>, Box<Gen>),
        /// A literal or folded block scalar.
        Block(&'static str, String),
    }

    const SCALARS: &[&str] = &[
        "a",
        "b",
        "x",
        "name",
        "hello world",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "true",
        "False",
        "~",
        "null",
        "0",
        "1",
        "-1",
        "+5",
        "1.5",
        "1e3",
        "-2.5E-3",
        "0x1F",
        "0o17",
        "1_000",
        "017",
        "500m",
        "1Gi",
        "é",
        "\"1\"",
        "'yes'",
        "\"\"",
        "''",
        "\"a\\tb\"",
        "'it''s'",
        "http://x:80/y",
        "9223372036854775807",
    ];
    const RARE_SCALARS: &[&str] = &[
        ".inf",
        "-.Inf",
        "+.inf",
        ".nan",
        "-.nan",
        "1e999",
        "12345678901234567890",
        "-12345678901234567890",
        "9223372036854775808",
        "-9223372036854775808",
        "inf",
        "nan",
        "<<",
        "0X1F",
        "0O17",
        "0b101",
        "1__0",
        "_1",
        ".5",
        "5.",
        "-017",
        "n",
        "Null",
        "NULL",
        "aGk=",
        "/w==",
        "2001-12-14",
        "\"\\u00e9\"",
        "\"x\\ny\"",
        "\"~\"",
        "'<<'",
    ];
    const KEYS: &[&str] = &[
        "a", "b", "c", "d", "name", "kind", "spec", "x y", "\"q\"", "'r'", "1", "yes", "on",
    ];
    const RARE_KEYS: &[&str] = &[
        "01", "0x1", "\"1\"", "n", "~", "null", "\"\"", "\"<<\"", "1.0", "-0", "+1", "<<", "\"a\"",
    ];
    const TAGS: &[&str] = &[
        "!!str",
        "!!int",
        "!!float",
        "!!bool",
        "!!null",
        "!!binary",
        "!!map",
        "!!seq",
        "!foo",
        "!bar",
        "!",
        "!!merge",
        "!!timestamp",
        "!include",
        "!time",
        "!!value",
        "!<tag:yaml.org,2002:str>",
    ];
    const ANCHORS: &[&str] = &["a", "b", "c"];

    fn text(
        common: &'static [&'static str],
        rare: &'static [&'static str],
    ) -> impl Strategy<Value = Gen> {
        prop_oneof![
            25 => proptest::sample::select(common).prop_map(|s| Gen::Scalar(s.to_string())),
            1 => proptest::sample::select(rare).prop_map(|s| Gen::Scalar(s.to_string())),
        ]
    }

    fn scalar() -> impl Strategy<Value = Gen> {
        prop_oneof![
            10 => text(SCALARS, RARE_SCALARS),
            1 => (proptest::sample::select(&["|", ">", "|-", ">+"][..]), "[a-z ]{0,12}")
                .prop_map(|(s, t)| Gen::Block(s, t)),
            2 => proptest::sample::select(ANCHORS).prop_map(Gen::Alias),
            1 => (proptest::sample::select(TAGS), text(SCALARS, RARE_SCALARS))
                .prop_map(|(t, n)| Gen::Props(None, Some(t), Box::new(n))),
        ]
    }

    fn key() -> impl Strategy<Value = Gen> {
        prop_oneof![
            200 => text(KEYS, RARE_KEYS),
            1 => proptest::sample::select(ANCHORS).prop_map(Gen::Alias),
            1 => (proptest::sample::select(TAGS), proptest::sample::select(KEYS))
                .prop_map(|(t, k)| Gen::Props(None, Some(t), Box::new(Gen::Scalar(k.to_string())))),
            1 => proptest::sample::select(KEYS).prop_map(|k| Gen::Seq(vec![Gen::Scalar(k.to_string())])),
        ]
    }

    /// The value of a merge key: an alias, a list of aliases and mappings, or a mapping.
    fn merge_value(
        inner: impl Strategy<Value = Gen> + Clone + 'static,
    ) -> impl Strategy<Value = Gen> {
        let alias = proptest::sample::select(ANCHORS).prop_map(Gen::Alias);
        let map = proptest::collection::vec((key(), inner), 0..3)
            .prop_map(Gen::Map)
            .boxed();
        prop_oneof![
            8 => alias.clone(),
            4 => proptest::collection::vec(prop_oneof![3 => alias, 1 => map.clone()], 1..4).prop_map(Gen::Seq),
            4 => map,
            1 => text(SCALARS, RARE_SCALARS),
        ]
    }

    fn node() -> impl Strategy<Value = Gen> {
        scalar().prop_recursive(4, 40, 5, |inner| {
            let entry = prop_oneof![
                8 => (key(), inner.clone()),
                1 => merge_value(inner.clone()).prop_map(|v| (Gen::Scalar("<<".to_string()), v)),
            ];
            prop_oneof![
                3 => proptest::collection::vec(inner.clone(), 0..5).prop_map(Gen::Seq),
                5 => proptest::collection::vec(entry, 0..5).prop_map(Gen::Map),
                1 => (
                    proptest::option::of(proptest::sample::select(ANCHORS)),
                    proptest::option::weighted(0.2, proptest::sample::select(TAGS)),
                    inner.clone(),
                )
                    .prop_map(|(a, t, n)| Gen::Props(a, t, Box::new(n))),
            ]
        })
    }

    /// Merges an anchor or tag on a node that has them already (`&a &b x` is not YAML).
    fn one_set_of_props(g: Gen) -> Gen {
        match g {
            Gen::Props(a, t, inner) => match one_set_of_props(*inner) {
                Gen::Props(a2, t2, inner) => Gen::Props(a.or(a2), t.or(t2), inner),
                // an alias has no properties
                Gen::Alias(x) => Gen::Alias(x),
                inner => Gen::Props(a, t, Box::new(inner)),
            },
            Gen::Seq(items) => Gen::Seq(items.into_iter().map(one_set_of_props).collect()),
            Gen::Map(entries) => Gen::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (one_set_of_props(k), one_set_of_props(v)))
                    .collect(),
            ),
            g => g,
        }
    }

    /// Makes most of a generated document valid: aliases to anchors not defined yet (or not
    /// complete yet) become text (or a mapping, after `<<`), and repeated keys are renamed.
    fn mostly_valid(
        g: &mut Gen,
        merged: bool,
        defined: &mut Vec<&'static str>,
        open: &mut Vec<&'static str>,
    ) {
        match g {
            Gen::Alias(a) if !defined.contains(a) || open.contains(a) => {
                *g = if merged {
                    Gen::Map(vec![(
                        Gen::Scalar("m".to_string()),
                        Gen::Scalar("1".to_string()),
                    )])
                } else {
                    Gen::Scalar("x".to_string())
                };
            }
            Gen::Props(anchor, _, inner) => {
                if let Some(a) = anchor {
                    open.push(a);
                }
                mostly_valid(inner, merged, defined, open);
                if let Some(a) = anchor {
                    open.pop();
                    defined.push(a);
                }
            }
            Gen::Seq(items) => {
                for item in items {
                    mostly_valid(item, merged, defined, open);
                }
            }
            Gen::Map(entries) => {
                let mut seen = Vec::new();
                for (i, (k, v)) in entries.iter_mut().enumerate() {
                    if let Gen::Scalar(text) = k {
                        if seen.contains(text) && text != "<<" {
                            *text = format!("k{i}");
                        }
                        seen.push(text.clone());
                    }
                    let merge = matches!(k, Gen::Scalar(t) if t == "<<");
                    mostly_valid(k, false, defined, open);
                    mostly_valid(v, merge, defined, open);
                }
            }
            Gen::Scalar(_) | Gen::Alias(_) | Gen::Block(..) => {}
        }
    }

    /// A document: a mapping that first defines anchors, then uses them.
    fn document() -> impl Strategy<Value = Gen> {
        let mapping = proptest::collection::vec((key(), node()), 1..4).prop_map(Gen::Map);
        let definition = (
            proptest::sample::select(ANCHORS),
            prop_oneof![3 => mapping, 1 => node()],
        );
        (
            proptest::collection::vec(definition, 0..4),
            node(),
            any::<bool>(),
            proptest::bool::weighted(0.9),
        )
            .prop_map(|(defs, body, wrap, sane)| {
                let doc = if defs.is_empty() && !wrap {
                    body
                } else {
                    let mut entries: Vec<(Gen, Gen)> = defs
                        .into_iter()
                        .enumerate()
                        .map(|(i, (a, n))| {
                            let name = Gen::Scalar(format!("def{i}"));
                            (name, Gen::Props(Some(a), None, Box::new(n)))
                        })
                        .collect();
                    entries.push((Gen::Scalar("body".to_string()), body));
                    Gen::Map(entries)
                };
                let mut doc = one_set_of_props(doc);
                if sane {
                    mostly_valid(&mut doc, false, &mut Vec::new(), &mut Vec::new());
                }
                doc
            })
    }

    fn is_container(g: &Gen) -> bool {
        match g {
            Gen::Seq(items) => !items.is_empty(),
            Gen::Map(entries) => !entries.is_empty(),
            _ => false,
        }
    }

    /// Renders `g` inline (flow style).
    fn flow(g: &Gen, out: &mut String) {
        match g {
            Gen::Scalar(s) => out.push_str(s),
            Gen::Block(_, t) => {
                out.push('"');
                out.push_str(t);
                out.push('"');
            }
            Gen::Alias(a) => {
                out.push('*');
                out.push_str(a);
            }
            Gen::Props(a, t, inner) => {
                if let Some(a) = a {
                    out.push('&');
                    out.push_str(a);
                    out.push(' ');
                }
                if let Some(t) = t {
                    out.push_str(t);
                    out.push(' ');
                }
                flow(inner, out);
            }
            Gen::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    flow(item, out);
                }
                out.push(']');
            }
            Gen::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if is_container(k) {
                        out.push_str("? ");
                    }
                    flow(k, out);
                    if matches!(k, Gen::Alias(_)) {
                        out.push(' ');
                    }
                    out.push_str(": ");
                    flow(v, out);
                }
                out.push('}');
            }
        }
    }

    /// Renders the value after `key:` or `-` in block style: inline, or on the next lines.
    fn block_value(g: &Gen, indent: usize, flow_style: bool, out: &mut String) {
        match g {
            Gen::Block(style, text) => {
                out.push(' ');
                out.push_str(style);
                out.push('\n');
                for line in text.split(' ') {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Gen::Props(a, t, inner) if is_container(inner) && !flow_style => {
                if let Some(a) = a {
                    out.push_str(" &");
                    out.push_str(a);
                }
                if let Some(t) = t {
                    out.push(' ');
                    out.push_str(t);
                }
                out.push('\n');
                block(inner, indent + 2, flow_style, out);
            }
            g if is_container(g) && !flow_style => {
                out.push('\n');
                block(g, indent + 2, flow_style, out);
            }
            g => {
                out.push(' ');
                flow(g, out);
                out.push('\n');
            }
        }
    }

    /// Renders `g` in block style at `indent`.
    fn block(g: &Gen, indent: usize, flow_style: bool, out: &mut String) {
        let pad = " ".repeat(indent);
        match g {
            Gen::Map(entries) if !entries.is_empty() => {
                for (k, v) in entries {
                    out.push_str(&pad);
                    if is_container(k) {
                        out.push_str("? ");
                        flow(k, out);
                        out.push('\n');
                        out.push_str(&pad);
                        out.push(':');
                    } else {
                        flow(k, out);
                        if matches!(k, Gen::Alias(_)) {
                            out.push(' ');
                        }
                        out.push(':');
                    }
                    block_value(v, indent, flow_style, out);
                }
            }
            Gen::Seq(items) if !items.is_empty() => {
                for item in items {
                    out.push_str(&pad);
                    out.push('-');
                    block_value(item, indent, flow_style, out);
                }
            }
            g => {
                out.push_str(&pad);
                flow(g, out);
                out.push('\n');
            }
        }
    }

    /// `g` without anchors, aliases and tags: what manifests are mostly made of, and what the
    /// fast reader reads.
    fn without_props(g: Gen) -> Gen {
        match g {
            Gen::Props(_, _, inner) => without_props(*inner),
            Gen::Alias(_) => Gen::Scalar("x".to_string()),
            Gen::Seq(items) => Gen::Seq(items.into_iter().map(without_props).collect()),
            Gen::Map(entries) => Gen::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (without_props(k), without_props(v)))
                    .collect(),
            ),
            g => g,
        }
    }

    /// A stream of up to three documents, in block or flow style, with comments and
    /// separators.
    fn stream() -> impl Strategy<Value = String> {
        stream_of(document())
    }

    /// [`stream`] without anchors, aliases and tags.
    fn plain_stream() -> impl Strategy<Value = String> {
        stream_of(document().prop_map(without_props))
    }

    fn stream_of(document: impl Strategy<Value = Gen>) -> impl Strategy<Value = String> {
        proptest::collection::vec((document, any::<bool>(), any::<bool>(), 0u8..4), 1..4).prop_map(
            |docs| {
                let mut out = String::new();
                for (i, (doc, flow_style, comment, sep)) in docs.iter().enumerate() {
                    if i > 0 || *sep == 0 {
                        out.push_str("---\n");
                    }
                    if *comment {
                        out.push_str("# a comment\n");
                    }
                    if *sep == 3 {
                        out.push_str("---\n");
                    }
                    block(doc, 0, *flow_style, &mut out);
                }
                out
            },
        )
    }

    /// An edit of the text (see `mutate`) that inserts YAML punctuation or a YAML word.
    fn edit() -> impl Strategy<Value = mutate::Edit> {
        let yamlish: &[&'static str] = &[
            ":",
            "- ",
            "\n  ",
            "\n",
            "{",
            "}",
            "[",
            "]",
            ",",
            "&a ",
            "*a",
            "*b",
            "<<: *a\n",
            "<<: ",
            "!!binary ",
            "!!str ",
            "!foo ",
            "---\n",
            "...\n",
            "\"",
            "'",
            "? ",
            "#",
            "\t",
            " ",
            "|\n",
            "%YAML 1.2\n",
            ".inf",
            "~",
            "yes",
        ];
        mutate::edit(proptest::sample::select(yamlish).prop_map(str::to_string))
    }

    /// Real manifests of the repository that mutations start from.
    fn seeds() -> Vec<String> {
        let mut files = repository_yaml();
        files.retain(|(_, t)| t.len() < 6_000);
        files.into_iter().step_by(7).map(|(_, t)| t).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn generated_yaml(text in stream()) {
            same(&text);
        }

        #[test]
        fn mutated_generated_yaml(text in stream(), edits in proptest::collection::vec(edit(), 1..4)) {
            same(&mutate::apply(&text, &edits));
        }

        #[test]
        fn generated_yaml_without_anchors_or_tags(text in plain_stream()) {
            same(&text);
        }

        #[test]
        fn mutated_generated_yaml_without_anchors_or_tags(text in plain_stream(), edits in proptest::collection::vec(edit(), 1..4)) {
            same(&mutate::apply(&text, &edits));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_500, ..ProptestConfig::default() })]

        #[test]
        fn mutated_manifests(seed in any::<usize>(), edits in proptest::collection::vec(edit(), 1..6)) {
            thread_local! {
                static SEEDS: Vec<String> = seeds();
            }
            let text = SEEDS.with(|s| s[seed % s.len()].clone());
            same(&mutate::apply(&text, &edits));
        }
    }
}
