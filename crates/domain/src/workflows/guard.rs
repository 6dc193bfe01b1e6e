//! The render budget. Templates are guarded in two ways before they run:
//!
//! - They are read with minijinja's parser and refused when they use what a
//!   budget cannot bound (`{% set %}…{% endset %}` and `{% filter %}` blocks
//!   and recursive loops capture output outside the field's limit), or when
//!   what runs on every render certainly exceeds the budget (loops over
//!   literal ranges, operators on literals).
//! - Each operator that can build a large value (`+`, `*`, `~`, list and map
//!   literals) is rewritten into a call of a guard that checks the size of
//!   what it would build first, every loop iterates through a guard that
//!   watches the clock, and every filter is wrapped the same way. So nothing
//!   is folded at compile time, and no single expression allocates much
//!   before it is refused. The rewritten template is parsed again and checked
//!   to hold no unguarded operator.
//!
//! At run time, minijinja's fuel caps instructions, the output writer caps
//! the field's size, and the guards cap built bytes, nesting and time. A
//! namespace can never be stored inside a value, so values cannot form
//! cycles (whose display would overflow the stack).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use minijinja::machinery::{WhitespaceConfig, ast, parse};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Enumerator, Object, ObjectRepr, Rest, ValueIter, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression, State, UndefinedBehavior, Value};

use super::{
    MAX_BUILT_BYTES, MAX_BUILT_NESTING, MAX_RENDERED_FIELD_BYTES, RENDER_TIME_LIMIT, TEMPLATE_FUEL,
};

/// minijinja's own limit on `range`.
const MAX_RANGE: u128 = 100_000;
/// Names the rewrite calls; templates may not use them.
const RESERVED: &str = "__mw_";

/// A budget that was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    Fuel,
    Output,
    Built,
    Nesting,
    Time,
}

impl Limit {
    pub(super) fn sentence(self) -> String {
        match self {
            Limit::Fuel => format!(
                "needs more than {TEMPLATE_FUEL} template instructions, the most a step may run (a loop over a large range or input?)"
            ),
            Limit::Output => format!(
                "renders more than {MAX_RENDERED_FIELD_BYTES} bytes (256 KiB), the most a field may render"
            ),
            Limit::Built => format!(
                "builds more than {MAX_BUILT_BYTES} bytes of values (4 MiB), the most a step's templates may build (a large repetition, join or replace?)"
            ),
            Limit::Nesting => format!(
                "builds values nested more than {MAX_BUILT_NESTING} deep, the most a template may build"
            ),
            Limit::Time => format!(
                "took longer than {} s to render, the most a step may take",
                RENDER_TIME_LIMIT.as_secs()
            ),
        }
    }
}

// ---------------------------------------------------------------------
// Before a run: read, refuse, rewrite.

/// Lower bounds of what a template costs on every render (what runs
/// whatever the input: not inside `if`, not in loops over input).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cost {
    pub fuel: u128,
    pub output: u128,
    pub built: u128,
}

/// A template ready to compile: every operator guarded.
pub(super) struct Prepared {
    pub source: String,
    pub cost: Cost,
    /// Something that fails on every render (a `range` too large).
    pub certain_failure: Option<String>,
}

/// Validate a template (for [`super::Step::validate`]), adding what it
/// certainly costs to `spent` (the step's total so far).
pub(super) fn check(text: &str, spent: &mut Cost) -> Result<(), String> {
    let prepared = prepare(text)?;
    within_budget(&prepared, spent)?;
    // It compiles (nothing large is folded now: the operators are calls).
    plain_environment()
        .template_from_str(&prepared.source)
        .map(|_| ())
        .map_err(|error| format!("is not a valid template ({})", error.kind()))
}

/// The budget violations the template shows, the step's totals included.
fn within_budget(prepared: &Prepared, spent: &mut Cost) -> Result<(), String> {
    if let Some(failure) = &prepared.certain_failure {
        return Err(failure.clone());
    }
    let cost = prepared.cost;
    spent.fuel = spent.fuel.saturating_add(cost.fuel);
    spent.built = spent.built.saturating_add(cost.built);
    if spent.fuel >= u128::from(TEMPLATE_FUEL) {
        return Err(format!(
            "has loops that need at least {} template instructions on every run; a step may run at most {TEMPLATE_FUEL}",
            spent.fuel
        ));
    }
    if spent.built > u128::from(MAX_BUILT_BYTES) {
        return Err(format!(
            "builds at least {} bytes of values on every run; a step's templates may build at most {MAX_BUILT_BYTES} bytes (4 MiB)",
            spent.built
        ));
    }
    if cost.output > MAX_RENDERED_FIELD_BYTES as u128 {
        return Err(format!(
            "renders at least {} bytes on every run; a field may render at most {MAX_RENDERED_FIELD_BYTES} bytes (256 KiB)",
            cost.output
        ));
    }
    Ok(())
}

/// The default syntax, as the environment has it.
#[allow(clippy::default_constructed_unit_structs)] // unless minijinja's `custom_syntax` is on
fn syntax() -> SyntaxConfig {
    SyntaxConfig::default()
}

mod rewrite;
mod runtime;

use rewrite::prepare;
use runtime::plain_environment;
pub(super) use runtime::{Budget, render};
