//! The built-in auto-draft pipeline's score on the labelled set must not
//! drop below the recorded baseline (`benchmarks/autodraft-eval/`).

use mailwright_domain::drafting::eval::{parse_cases, report, score};

const SET: &str = include_str!("../../../benchmarks/autodraft-eval/messages.jsonl");
const BASELINE: &str = include_str!("../../../benchmarks/autodraft-eval/BASELINE.json");

#[test]
fn the_builtin_pipeline_scores_at_least_its_baseline() {
    let cases = parse_cases(SET).unwrap();
    assert!(cases.len() >= 150, "the set holds {} messages", cases.len());
    let baseline: serde_json::Value = serde_json::from_str(BASELINE).unwrap();
    let floor = |name: &str| baseline[name].as_f64().unwrap();
    let score = score(&cases);
    let report = report(&score);
    assert!(
        score.accuracy() + 1e-9 >= floor("decision_accuracy"),
        "decision accuracy fell below the baseline:\n{report}"
    );
    assert!(
        score.type_accuracy() + 1e-9 >= floor("type_accuracy"),
        "type accuracy fell below the baseline:\n{report}"
    );
}
