//! Random and mutated YAML never makes parsing or validation panic.

use mlctl_core::spec::SourceText;
use mlctl_core::validate::validate_sources;
use proptest::prelude::*;

#[path = "support/mutate.rs"]
mod mutate;

use mutate::{Edit, apply};

const SEEDS: &[&str] = &[
    include_str!("../../../examples/quickstart/quickstart.yaml"),
    include_str!("../../../examples/seed/03-model-serving.yaml"),
    include_str!("../../../examples/seed/09-spark-job.yaml"),
    include_str!("../../../examples/seed/15-network-policy.yaml"),
    include_str!("../../../examples/seed/06-training-workflow.yaml"),
];

fn mutation() -> impl Strategy<Value = Edit> {
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
    mutate::edit(yamlish)
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
