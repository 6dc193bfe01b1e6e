//! Print the built-in auto-draft pipeline's score on the labelled set:
//! `cargo run -p mailwright-domain --example eval_autodraft [path]`
//! (default `benchmarks/autodraft-eval/messages.jsonl`).

use mailwright_domain::drafting::eval::{parse_cases, report, score};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../benchmarks/autodraft-eval/messages.jsonl"
        )
        .to_owned()
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    let cases = parse_cases(&text).unwrap_or_else(|error| panic!("{path}: {error}"));
    print!("{}", report(&score(&cases)));
}
