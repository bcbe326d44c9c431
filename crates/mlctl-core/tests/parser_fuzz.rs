//! Random and mutated YAML never makes parsing or validation panic.

use mlctl_core::spec::SourceText;
use mlctl_core::validate::validate_sources;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../../../examples/quickstart/quickstart.yaml"),
    include_str!("../../../examples/seed/03-model-serving.yaml"),
    include_str!("../../../examples/seed/09-spark-job.yaml"),
    include_str!("../../../examples/seed/15-network-policy.yaml"),
    include_str!("../../../examples/seed/06-training-workflow.yaml"),
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, char),
    Duplicate(usize, usize),
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in mutations {
        let n = chars.len().max(1);
        match m {
            Mutation::Delete(at, len) => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                if at < end {
                    chars.drain(at..end);
                }
            }
            Mutation::Insert(at, s) => {
                let at = at % n;
                let at = at.min(chars.len());
                chars.splice(at..at, s.chars());
            }
            Mutation::Replace(at, c) => {
                if !chars.is_empty() {
                    let at = at % chars.len();
                    chars[at] = *c;
                }
            }
            Mutation::Duplicate(at, len) => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                if at < end {
                    let copy: Vec<char> = chars[at..end].to_vec();
                    chars.splice(end..end, copy);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let yamlish = prop_oneof![
        Just(":".to_string()),
        Just("- ".to_string()),
        Just("\n  ".to_string()),
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a\n".to_string()),
        Just("!!binary ".to_string()),
        Just("---\n".to_string()),
        Just("\"".to_string()),
        Just("[".to_string()),
        "\\PC{0,8}",
    ];
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, l)| Mutation::Delete(a, l)),
        (any::<usize>(), yamlish).prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| Mutation::Replace(a, c)),
        (any::<usize>(), 0usize..80).prop_map(|(a, l)| Mutation::Duplicate(a, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(seed in 0usize..SEEDS.len(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let text = apply(SEEDS[seed], &mutations);
        let report = validate_sources(&[SourceText { name: "fuzz.yaml", text: &text }]);
        for d in &report.diagnostics {
            // every finding about the file is located
            prop_assert!(d.pos.is_known() || d.code == "duplicate-object", "{d}");
        }
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = validate_sources(&[SourceText { name: "fuzz.yaml", text: &text }]);
    }
}
