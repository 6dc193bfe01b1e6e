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

pub(super) fn prepare(text: &str) -> Result<Prepared, String> {
    let syntax_error = |error: Error| format!("is not a valid template ({})", error.kind());
    let tree =
        parse(text, "<string>", syntax(), WhitespaceConfig::default()).map_err(syntax_error)?;
    let mut walker = Walker {
        source: text,
        edits: Vec::new(),
        cost: Cost::default(),
        refused: None,
        certain_failure: None,
        range_shadowed: false,
        folded: 0,
    };
    walker.find_shadowed_range(&tree);
    walker.stmt(&tree, Reach::ALWAYS);
    if let Some(refused) = walker.refused {
        return Err(refused);
    }
    let source = apply(text, walker.edits).ok_or_else(unguardable)?;
    // The net: whatever the rewrite missed is refused, never run unguarded.
    let rewritten = parse(&source, "<string>", syntax(), WhitespaceConfig::default())
        .map_err(|_| unguardable())?;
    if !verify_stmt(&rewritten) {
        return Err(unguardable());
    }
    Ok(Prepared {
        source,
        cost: walker.cost,
        certain_failure: walker.certain_failure,
    })
}

fn unguardable() -> String {
    "could not be prepared for rendering with its budget; write it more simply (and tell us which template it was)".into()
}

/// How often a statement runs on every render: `certain` when it runs
/// whatever the input, then at least `times` times.
#[derive(Debug, Clone, Copy)]
struct Reach {
    certain: bool,
    times: u128,
}

impl Reach {
    const ALWAYS: Reach = Reach {
        certain: true,
        times: 1,
    };
    const MAYBE: Reach = Reach {
        certain: false,
        times: 0,
    };

    fn times(self, n: u128) -> Reach {
        if self.certain && n > 0 {
            Reach {
                certain: true,
                times: self.times.saturating_mul(n),
            }
        } else {
            Reach::MAYBE
        }
    }

    fn cost(self, each: u128) -> u128 {
        if self.certain {
            self.times.saturating_mul(each)
        } else {
            0
        }
    }
}

/// One change to the source: `text` replaces `start..end` (an insertion
/// when they are equal). Sorted by position, then `rank`.
struct Edit {
    start: usize,
    end: usize,
    text: &'static str,
    rank: (u8, i64),
}

fn open(at: usize, text: &'static str, depth: i64) -> Edit {
    // Outer calls open first.
    Edit {
        start: at,
        end: at,
        text,
        rank: (1, depth),
    }
}

fn close(at: usize, depth: i64) -> Edit {
    // Inner calls close first; before anything that opens or replaces here.
    Edit {
        start: at,
        end: at,
        text: ")",
        rank: (0, -depth),
    }
}

fn replace(at: usize, text: &'static str) -> Edit {
    Edit {
        start: at,
        end: at + 1,
        text,
        rank: (2, 0),
    }
}

fn apply(source: &str, mut edits: Vec<Edit>) -> Option<String> {
    edits.sort_by_key(|edit| (edit.start, edit.rank));
    let mut out = String::with_capacity(source.len() + edits.len() * 12);
    let mut cursor = 0;
    for edit in edits {
        if edit.start < cursor || edit.end > source.len() {
            return None;
        }
        out.push_str(source.get(cursor..edit.start)?);
        out.push_str(edit.text);
        cursor = edit.end;
    }
    out.push_str(source.get(cursor..)?);
    Some(out)
}

struct Walker<'s> {
    source: &'s str,
    edits: Vec<Edit>,
    cost: Cost,
    refused: Option<String>,
    certain_failure: Option<String>,
    /// A template that assigns `range` cannot be judged by its calls.
    range_shadowed: bool,
    /// Bytes of literals folded here: at most a step's budget, so
    /// checking a template costs little whatever it holds.
    folded: u64,
}

fn end(expr: &ast::Expr) -> usize {
    expr.span().end_offset as usize
}

impl Walker<'_> {
    fn refuse(&mut self, why: impl Into<String>) {
        self.refused.get_or_insert_with(|| why.into());
    }

    fn fail_certainly(&mut self, reach: Reach, why: String) {
        if reach.certain {
            self.certain_failure.get_or_insert(why);
        }
    }

    /// Where `token` starts after `from`, past blanks and closing
    /// parentheses (which end the expression before it).
    fn token_after(&self, from: usize, token: &str) -> Option<usize> {
        let rest = self.source.get(from..)?;
        let skipped = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_whitespace() || c == ')')
                .len();
        let at = from + skipped;
        let after = self.source.get(at..)?;
        let word = token.chars().all(|c| c.is_ascii_alphabetic());
        let matches = after.starts_with(token)
            && !(word
                && after[token.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_'));
        matches.then_some(at)
    }

    /// The start of what follows `token` after `from` (blanks skipped).
    fn after_token(&self, from: usize, token: &str) -> Option<usize> {
        let at = self.token_after(from, token)? + token.len();
        let rest = self.source.get(at..)?;
        Some(at + rest.len() - rest.trim_start().len())
    }

    fn find_shadowed_range(&mut self, stmt: &ast::Stmt) {
        fn assigns_range(target: &ast::Expr) -> bool {
            match target {
                ast::Expr::Var(var) => var.id == "range",
                ast::Expr::List(list) => list.items.iter().any(assigns_range),
                _ => false,
            }
        }
        let mut found = false;
        visit_stmts(stmt, &mut |stmt| match stmt {
            ast::Stmt::ForLoop(f) => found |= assigns_range(&f.target),
            ast::Stmt::Set(s) => found |= assigns_range(&s.target),
            ast::Stmt::WithBlock(w) => {
                found |= w
                    .assignments
                    .iter()
                    .any(|(target, _)| assigns_range(target))
            }
            _ => {}
        });
        self.range_shadowed = found;
    }

    fn stmts(&mut self, body: &[ast::Stmt], reach: Reach) {
        for stmt in body {
            self.stmt(stmt, reach);
        }
    }

    fn stmt(&mut self, stmt: &ast::Stmt, reach: Reach) {
        match stmt {
            ast::Stmt::Template(t) => self.stmts(&t.children, reach),
            ast::Stmt::EmitExpr(e) => {
                if let Some(value) = self.expr(&e.expr, reach, 1) {
                    let shown = value.to_string().len() as u128;
                    self.cost.output = self.cost.output.saturating_add(reach.cost(shown));
                }
            }
            ast::Stmt::EmitRaw(r) => {
                self.cost.output = self
                    .cost
                    .output
                    .saturating_add(reach.cost(r.raw.len() as u128));
            }
            ast::Stmt::ForLoop(f) => self.for_loop(f, reach),
            ast::Stmt::IfCond(c) => {
                self.expr(&c.expr, reach, 1);
                let literal = match &c.expr {
                    ast::Expr::Const(c) => Some(c.value.is_true()),
                    _ => None,
                };
                let (yes, no) = match literal {
                    Some(true) => (reach, Reach::MAYBE),
                    Some(false) => (Reach::MAYBE, reach),
                    None => (Reach::MAYBE, Reach::MAYBE),
                };
                self.stmts(&c.true_body, yes);
                self.stmts(&c.false_body, no);
            }
            ast::Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.target(target, false);
                    self.expr(value, reach, 1);
                }
                self.stmts(&w.body, reach);
            }
            ast::Stmt::Set(s) => self.set(s, reach),
            ast::Stmt::AutoEscape(a) => {
                self.expr(&a.enabled, reach, 1);
                self.stmts(&a.body, reach);
            }
            ast::Stmt::Do(d) => {
                self.expr(&d.call.expr, reach, 1);
                self.args(&d.call.args, reach, 1);
            }
            ast::Stmt::SetBlock(_) => self.refuse(
                "uses a `{% set %}…{% endset %}` block, which step templates do not support; use `{% set name = … %}`",
            ),
            ast::Stmt::FilterBlock(_) => self.refuse(
                "uses a `{% filter %}` block, which step templates do not support; apply the filter to an expression",
            ),
            #[allow(unreachable_patterns)]
            _ => self.refuse(
                "uses a statement step templates do not support (blocks, includes, imports, macros)",
            ),
        }
    }

    fn for_loop(&mut self, f: &ast::ForLoop, reach: Reach) {
        if f.recursive {
            self.refuse("uses a recursive loop, which step templates do not support");
            return;
        }
        self.target(&f.target, false);
        // The iterable goes through the clock-watching guard.
        match self.after_token(end(&f.target), "in") {
            Some(start) if start <= end(&f.iter) => {
                self.edits.push(open(start, "__mw_iter(", 0));
                self.edits.push(close(end(&f.iter), 0));
            }
            _ => self.refuse(unguardable()),
        }
        self.expr(&f.iter, reach, 1);
        let iterations = self.iterations(&f.iter);
        if let Some(filter) = &f.filter_expr {
            self.expr(filter, Reach::MAYBE, 1);
        }
        // Every iteration takes at least one instruction.
        if let Some(n) = iterations {
            self.cost.fuel = self.cost.fuel.saturating_add(reach.cost(n));
        }
        let body = match (iterations, &f.filter_expr) {
            (Some(n), None) => reach.times(n),
            _ => Reach::MAYBE,
        };
        self.stmts(&f.body, body);
        let otherwise = if iterations == Some(0) {
            reach
        } else {
            Reach::MAYBE
        };
        self.stmts(&f.else_body, otherwise);
    }

    /// How many times a loop over `iter` iterates, when the template says.
    fn iterations(&self, iter: &ast::Expr) -> Option<u128> {
        match iter {
            ast::Expr::Call(call) => self.literal_range(call),
            ast::Expr::List(list) if is_literal_list(list) => Some(list.items.len() as u128),
            _ => None,
        }
    }

    /// The length of `range(…)` with literal integer arguments.
    fn literal_range(&self, call: &ast::Call) -> Option<u128> {
        if self.range_shadowed || !matches!(&call.expr, ast::Expr::Var(v) if v.id == "range") {
            return None;
        }
        let mut numbers = Vec::new();
        for arg in &call.args {
            match arg {
                ast::CallArg::Pos(ast::Expr::Const(c)) if c.value.is_integer() => {
                    numbers.push(i128::try_from(c.value.clone()).ok()?)
                }
                _ => return None,
            }
        }
        let (start, stop, step) = match numbers[..] {
            [stop] => (0, stop, 1),
            [start, stop] => (start, stop, 1),
            [start, stop, step] if step != 0 => (start, stop, step),
            _ => return None,
        };
        let span = if step > 0 { stop - start } else { start - stop };
        if span <= 0 {
            return Some(0);
        }
        let step = step.unsigned_abs();
        Some((span as u128).div_ceil(step))
    }

    fn set(&mut self, s: &ast::Set, reach: Reach) {
        let rhs_start = self.after_token(end(&s.target), "=");
        match &s.target {
            ast::Expr::GetAttr(attr) => {
                // `{% set ns.attr = … %}`: the value must not be a namespace.
                if !matches!(&attr.expr, ast::Expr::Var(_)) {
                    self.refuse("assigns to a nested attribute; step templates only support `{% set namespace.attr = … %}`");
                }
                self.target(&attr.expr, false);
                match rhs_start {
                    Some(start) if start <= end(&s.expr) => {
                        self.edits.push(open(start, "__mw_assign(", 0));
                        self.edits.push(close(end(&s.expr), 0));
                    }
                    _ => self.refuse(unguardable()),
                }
            }
            target => self.target(target, true),
        }
        // `{% set a = x, y %}`: a list without brackets, whose span starts
        // at its second item.
        if let ast::Expr::List(list) = &s.expr
            && !is_literal_list(list)
            && rhs_start != Some(list.span().start_offset as usize)
        {
            for item in &list.items {
                self.expr(item, reach, 2);
            }
            match rhs_start {
                Some(start) => {
                    self.edits.push(open(start, "__mw_list(", 1));
                    self.edits.push(close(end(&s.expr), 1));
                }
                None => self.refuse(unguardable()),
            }
            return;
        }
        self.expr(&s.expr, reach, 1);
    }

    /// An assignment target: names only (and the reserved ones refused).
    fn target(&mut self, target: &ast::Expr, in_set: bool) {
        match target {
            ast::Expr::Var(var) => self.name(var.id),
            ast::Expr::List(list) => {
                for item in &list.items {
                    if in_set && matches!(item, ast::Expr::GetAttr(_)) {
                        self.refuse(
                            "assigns namespace attributes in a tuple; assign them one at a time",
                        );
                    }
                    self.target(item, in_set);
                }
            }
            ast::Expr::GetAttr(_) => {
                self.refuse("assigns namespace attributes in a tuple; assign them one at a time")
            }
            _ => self.refuse(unguardable()),
        }
    }

    fn name(&mut self, id: &str) {
        if id.starts_with(RESERVED) {
            self.refuse(format!(
                "uses the name `{id}`; names starting with `{RESERVED}` are reserved"
            ));
        }
    }

    fn args(&mut self, args: &[ast::CallArg], reach: Reach, depth: i64) {
        for arg in args {
            match arg {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => {
                    self.expr(e, reach, depth);
                }
            }
        }
    }

    /// Walk an expression, adding its guards; its value when it is a
    /// literal (folded here, within the budget, as minijinja would).
    fn expr(&mut self, expr: &ast::Expr, reach: Reach, depth: i64) -> Option<Value> {
        let inner = depth + 1;
        match expr {
            ast::Expr::Var(var) => {
                self.name(var.id);
                None
            }
            ast::Expr::Const(c) => Some(c.value.clone()),
            ast::Expr::Slice(s) => {
                self.expr(&s.expr, reach, inner);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part, reach, inner);
                }
                None
            }
            ast::Expr::UnaryOp(u) => {
                self.expr(&u.expr, reach, inner);
                None
            }
            ast::Expr::BinOp(b) => match b.op {
                ast::BinOpKind::Add | ast::BinOpKind::Mul | ast::BinOpKind::Concat => {
                    let left = self.expr(&b.left, reach, inner);
                    let right = self.expr(&b.right, reach, inner);
                    self.guard_operator(b, depth);
                    self.fold(b.op, left?, right?, reach)
                }
                ast::BinOpKind::ScAnd | ast::BinOpKind::ScOr => {
                    self.expr(&b.left, reach, inner);
                    self.expr(&b.right, Reach::MAYBE, inner);
                    None
                }
                _ => {
                    self.expr(&b.left, reach, inner);
                    self.expr(&b.right, reach, inner);
                    None
                }
            },
            ast::Expr::Compare(c) => {
                self.expr(&c.expr, reach, inner);
                for (position, op) in c.ops.iter().enumerate() {
                    let reach = if position == 0 { reach } else { Reach::MAYBE };
                    self.expr(&op.expr, reach, inner);
                }
                None
            }
            ast::Expr::IfExpr(i) => {
                self.expr(&i.test_expr, reach, inner);
                self.expr(&i.true_expr, Reach::MAYBE, inner);
                if let Some(otherwise) = &i.false_expr {
                    self.expr(otherwise, Reach::MAYBE, inner);
                }
                None
            }
            ast::Expr::Filter(f) => {
                if let Some(value) = &f.expr {
                    self.expr(value, reach, inner);
                }
                self.args(&f.args, reach, inner);
                None
            }
            ast::Expr::Test(t) => {
                self.expr(&t.expr, reach, inner);
                self.args(&t.args, reach, inner);
                None
            }
            ast::Expr::GetAttr(g) => {
                self.expr(&g.expr, reach, inner);
                None
            }
            ast::Expr::GetItem(g) => {
                self.expr(&g.expr, reach, inner);
                self.expr(&g.subscript_expr, reach, inner);
                None
            }
            ast::Expr::Call(c) => {
                self.expr(&c.expr, reach, inner);
                self.args(&c.args, reach, inner);
                if let Some(n) = self.literal_range(c)
                    && n > MAX_RANGE
                {
                    self.fail_certainly(
                        reach,
                        format!("calls `range` with {n} elements; it allows at most {MAX_RANGE}"),
                    );
                }
                None
            }
            ast::Expr::List(l) => {
                if is_literal_list(l) {
                    // minijinja folds it: its size is the template's.
                    return None;
                }
                for item in &l.items {
                    self.expr(item, reach, inner);
                }
                let span = l.span();
                let (start, stop) = (span.start_offset as usize, span.end_offset as usize);
                let bytes = self.source.as_bytes();
                if matches!(bytes.get(start), Some(b'[' | b'('))
                    && matches!(bytes.get(stop.wrapping_sub(1)), Some(b']' | b')'))
                {
                    self.edits.push(replace(start, "__mw_list("));
                    self.edits.push(replace(stop - 1, ")"));
                } else {
                    self.refuse(unguardable());
                }
                None
            }
            ast::Expr::Map(m) => {
                let literal = m
                    .keys
                    .iter()
                    .chain(&m.values)
                    .all(|e| matches!(e, ast::Expr::Const(_)));
                if literal {
                    return None;
                }
                for (key, value) in m.keys.iter().zip(&m.values) {
                    self.expr(key, reach, inner);
                    self.expr(value, reach, inner);
                    match self.token_after(end(key), ":") {
                        Some(colon) => self.edits.push(replace(colon, ",")),
                        None => self.refuse(unguardable()),
                    }
                }
                let span = m.span();
                let (start, stop) = (span.start_offset as usize, span.end_offset as usize);
                let bytes = self.source.as_bytes();
                if bytes.get(start) == Some(&b'{') && bytes.get(stop.wrapping_sub(1)) == Some(&b'}')
                {
                    self.edits.push(replace(start, "__mw_map("));
                    self.edits.push(replace(stop - 1, ")"));
                } else {
                    self.refuse(unguardable());
                }
                None
            }
        }
    }

    /// `a + b` becomes `__mw_add(a , b)`, and so on.
    fn guard_operator(&mut self, b: &ast::Spanned<ast::BinOp>, depth: i64) {
        let (name, symbol) = match b.op {
            ast::BinOpKind::Add => ("__mw_add(", "+"),
            ast::BinOpKind::Mul => ("__mw_mul(", "*"),
            _ => ("__mw_concat(", "~"),
        };
        let span = b.span();
        let (start, stop) = (span.start_offset as usize, span.end_offset as usize);
        let at = self
            .token_after(end(&b.left), symbol)
            .filter(|&at| at < stop && !(symbol == "*" && self.source[at + 1..].starts_with('*')));
        match at {
            Some(at) if start <= at => {
                self.edits.push(open(start, name, depth));
                self.edits.push(replace(at, ","));
                self.edits.push(close(stop, depth));
            }
            _ => self.refuse(unguardable()),
        }
    }

    /// An operator on two literals: what it builds, counted when certain,
    /// refused when it is more than a step may build.
    fn fold(
        &mut self,
        op: ast::BinOpKind,
        left: Value,
        right: Value,
        reach: Reach,
    ) -> Option<Value> {
        let size = match predicted(op, &left, &right, MAX_BUILT_BYTES) {
            Ok(size) => size,
            Err(_) => u128::from(MAX_BUILT_BYTES) + 1,
        };
        if size > u128::from(MAX_BUILT_BYTES) {
            self.fail_certainly(
                reach,
                format!(
                    "builds a value of at least {size} bytes on every run; a step's templates may build at most {MAX_BUILT_BYTES} bytes (4 MiB)"
                ),
            );
            return None;
        }
        if u128::from(self.folded).saturating_add(size) > u128::from(MAX_BUILT_BYTES) {
            return None;
        }
        let value = operate(op, &left, &right).ok()?;
        let built = weight(&value, MAX_BUILT_BYTES).unwrap_or(MAX_BUILT_BYTES);
        self.folded = self.folded.saturating_add(built);
        self.cost.built = self
            .cost
            .built
            .saturating_add(reach.cost(u128::from(built)));
        Some(value)
    }
}

fn is_literal_list(list: &ast::List) -> bool {
    list.items.iter().all(|e| matches!(e, ast::Expr::Const(_)))
}

/// Every statement, depth first.
fn visit_stmts(stmt: &ast::Stmt, f: &mut dyn FnMut(&ast::Stmt)) {
    f(stmt);
    let bodies: Vec<&[ast::Stmt]> = match stmt {
        ast::Stmt::Template(t) => vec![&t.children],
        ast::Stmt::ForLoop(l) => vec![&l.body, &l.else_body],
        ast::Stmt::IfCond(c) => vec![&c.true_body, &c.false_body],
        ast::Stmt::WithBlock(w) => vec![&w.body],
        ast::Stmt::SetBlock(s) => vec![&s.body],
        ast::Stmt::AutoEscape(a) => vec![&a.body],
        ast::Stmt::FilterBlock(b) => vec![&b.body],
        _ => vec![],
    };
    for body in bodies {
        for child in body {
            visit_stmts(child, f);
        }
    }
}

/// The rewritten template holds no unguarded operator, literal, loop or
/// namespace assignment.
fn verify_stmt(stmt: &ast::Stmt) -> bool {
    let mut ok = true;
    visit_stmts(stmt, &mut |stmt| {
        let guarded_call = |expr: &ast::Expr, name: &str| matches!(expr, ast::Expr::Call(c) if matches!(&c.expr, ast::Expr::Var(v) if v.id == name));
        ok &= match stmt {
            ast::Stmt::Template(_) | ast::Stmt::EmitRaw(_) => true,
            ast::Stmt::EmitExpr(e) => verify_expr(&e.expr),
            ast::Stmt::ForLoop(l) => {
                !l.recursive
                    && guarded_call(&l.iter, "__mw_iter")
                    && verify_expr(&l.iter)
                    && l.filter_expr.as_ref().is_none_or(verify_expr)
            }
            ast::Stmt::IfCond(c) => verify_expr(&c.expr),
            ast::Stmt::WithBlock(w) => w.assignments.iter().all(|(_, e)| verify_expr(e)),
            ast::Stmt::Set(s) => {
                (!matches!(s.target, ast::Expr::GetAttr(_)) || guarded_call(&s.expr, "__mw_assign"))
                    && verify_expr(&s.expr)
            }
            ast::Stmt::AutoEscape(a) => verify_expr(&a.enabled),
            ast::Stmt::Do(d) => verify_expr(&d.call.expr) && verify_args(&d.call.args),
            _ => false,
        };
    });
    ok
}

fn verify_args(args: &[ast::CallArg]) -> bool {
    args.iter().all(|arg| match arg {
        ast::CallArg::Pos(e)
        | ast::CallArg::Kwarg(_, e)
        | ast::CallArg::PosSplat(e)
        | ast::CallArg::KwargSplat(e) => verify_expr(e),
    })
}

fn verify_expr(expr: &ast::Expr) -> bool {
    match expr {
        ast::Expr::Var(_) | ast::Expr::Const(_) => true,
        ast::Expr::Slice(s) => {
            verify_expr(&s.expr)
                && [&s.start, &s.stop, &s.step]
                    .into_iter()
                    .flatten()
                    .all(verify_expr)
        }
        ast::Expr::UnaryOp(u) => verify_expr(&u.expr),
        ast::Expr::BinOp(b) => {
            !matches!(
                b.op,
                ast::BinOpKind::Add | ast::BinOpKind::Mul | ast::BinOpKind::Concat
            ) && verify_expr(&b.left)
                && verify_expr(&b.right)
        }
        ast::Expr::Compare(c) => {
            verify_expr(&c.expr) && c.ops.iter().all(|op| verify_expr(&op.expr))
        }
        ast::Expr::IfExpr(i) => {
            verify_expr(&i.test_expr)
                && verify_expr(&i.true_expr)
                && i.false_expr.as_ref().is_none_or(verify_expr)
        }
        ast::Expr::Filter(f) => f.expr.as_ref().is_some_and(verify_expr) && verify_args(&f.args),
        ast::Expr::Test(t) => verify_expr(&t.expr) && verify_args(&t.args),
        ast::Expr::GetAttr(g) => verify_expr(&g.expr),
        ast::Expr::GetItem(g) => verify_expr(&g.expr) && verify_expr(&g.subscript_expr),
        ast::Expr::Call(c) => verify_expr(&c.expr) && verify_args(&c.args),
        ast::Expr::List(l) => is_literal_list(l),
        ast::Expr::Map(m) => m
            .keys
            .iter()
            .chain(&m.values)
            .all(|e| matches!(e, ast::Expr::Const(_))),
    }
}

// ---------------------------------------------------------------------
// At run time.

/// What one step's render may still spend.
#[derive(Debug)]
pub(super) struct Budget {
    deadline: Instant,
    fuel: AtomicU64,
    built: AtomicU64,
    exceeded: Mutex<Option<Limit>>,
}

impl Budget {
    pub(super) fn new(deadline: Instant) -> Arc<Budget> {
        Arc::new(Budget {
            deadline,
            fuel: AtomicU64::new(TEMPLATE_FUEL),
            built: AtomicU64::new(0),
            exceeded: Mutex::new(None),
        })
    }

    fn exceeded(&self) -> Option<Limit> {
        *self
            .exceeded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Record `limit` (the first one counts) and make the error that stops
    /// the render.
    fn fail(&self, limit: Limit) -> Error {
        self.exceeded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get_or_insert(limit);
        Error::new(ErrorKind::InvalidOperation, limit.sentence())
    }

    /// Stop if a limit was reached, or the time is up.
    fn check(&self) -> Result<(), Error> {
        if let Some(limit) = self.exceeded() {
            return Err(Error::new(ErrorKind::InvalidOperation, limit.sentence()));
        }
        if Instant::now() >= self.deadline {
            return Err(self.fail(Limit::Time));
        }
        Ok(())
    }

    fn remaining(&self) -> u64 {
        MAX_BUILT_BYTES.saturating_sub(self.built.load(Ordering::Relaxed))
    }

    /// Refuse to build `size` more bytes if they do not fit.
    fn fits(&self, size: u128) -> Result<(), Error> {
        if size > u128::from(self.remaining()) {
            Err(self.fail(Limit::Built))
        } else {
            Ok(())
        }
    }

    /// Count a value the template built.
    fn charge(&self, value: &Value) -> Result<(), Error> {
        let size = weight(value, self.remaining()).map_err(|limit| self.fail(limit))?;
        self.built.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Measure an existing value, refusing what could not fit anyway.
    fn measure(&self, value: &Value) -> Result<u64, Error> {
        weight(value, self.remaining()).map_err(|limit| self.fail(limit))
    }
}

/// A value's size: bytes of its strings, 8 per other scalar, 2 per
/// container and item; stops (refusing) past `limit` or
/// [`MAX_BUILT_NESTING`], so it costs at most `limit` steps.
fn weight(value: &Value, limit: u64) -> Result<u64, Limit> {
    fn add(value: &Value, limit: u64, depth: usize, total: &mut u64) -> Result<(), Limit> {
        if depth > MAX_BUILT_NESTING {
            return Err(Limit::Nesting);
        }
        let kind = value.kind();
        let own = match kind {
            ValueKind::String => value.as_str().map_or(0, str::len) as u64,
            ValueKind::Bytes => value.as_bytes().map_or(0, <[u8]>::len) as u64,
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => 2,
            _ => 8,
        };
        *total = total.saturating_add(own);
        if *total > limit {
            return Err(Limit::Built);
        }
        if !matches!(kind, ValueKind::Seq | ValueKind::Iterable | ValueKind::Map) {
            return Ok(());
        }
        let Ok(items) = value.try_iter() else {
            return Ok(());
        };
        for item in items {
            *total = total.saturating_add(2);
            if kind == ValueKind::Map {
                let member = value.get_item(&item).unwrap_or_default();
                add(&member, limit, depth + 1, total)?;
            }
            add(&item, limit, depth + 1, total)?;
        }
        Ok(())
    }
    let mut total = 0;
    add(value, limit, 0, &mut total)?;
    Ok(total)
}

/// The most `op` on these operands may build (before building it).
fn predicted(op: ast::BinOpKind, left: &Value, right: &Value, limit: u64) -> Result<u128, Limit> {
    let size = |value: &Value| weight(value, limit).map(u128::from);
    // Counted as minijinja counts repetitions (`2.0` is 2).
    let repeated = |value: &Value, times: &Value| -> Option<Result<u128, Limit>> {
        let repeatable = matches!(
            value.kind(),
            ValueKind::String | ValueKind::Seq | ValueKind::Iterable
        );
        let times = times.as_usize().filter(|_| repeatable)? as u128;
        Some(if times == 0 {
            Ok(0)
        } else {
            size(value).map(|size| size.saturating_mul(times))
        })
    };
    match op {
        ast::BinOpKind::Mul => repeated(left, right)
            .or_else(|| repeated(right, left))
            .unwrap_or(Ok(16)),
        _ => Ok(size(left)?.saturating_add(size(right)?)),
    }
}

/// minijinja's own `+`, `*` and `~` (only once the size is known to fit).
fn operate(op: ast::BinOpKind, left: &Value, right: &Value) -> Result<Value, Error> {
    static OPERATORS: LazyLock<Environment<'static>> = LazyLock::new(plain_environment);
    static COMPILED: LazyLock<[Expression<'static, 'static>; 3]> = LazyLock::new(|| {
        ["a + b", "a * b", "a ~ b"].map(|source| {
            OPERATORS
                .compile_expression(source)
                .expect("the operators compile")
        })
    });
    let [add, mul, concat] = &*COMPILED;
    let expression = match op {
        ast::BinOpKind::Add => add,
        ast::BinOpKind::Mul => mul,
        _ => concat,
    };
    expression.eval(Value::from_iter([
        ("a", left.clone()),
        ("b", right.clone()),
    ]))
}

/// Templates as they always rendered, unguarded: for compiling checks and
/// the operators' arithmetic only.
fn plain_environment() -> Environment<'static> {
    let mut environment = Environment::new();
    // A missing input is an error, not an empty string sent to someone.
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment
}

/// The type name minijinja's namespaces have (private to it).
fn is_namespace(value: &Value) -> bool {
    static NAMESPACE: LazyLock<Option<&'static str>> = LazyLock::new(|| {
        let environment = Environment::new();
        let namespace = environment
            .globals()
            .find(|(name, _)| *name == "namespace")?
            .1
            .call(&environment.empty_state(), &[])
            .ok()?;
        namespace.as_object().map(|object| object.type_name())
    });
    value
        .as_object()
        .is_some_and(|object| Some(object.type_name()) == *NAMESPACE)
}

fn no_namespace(budget: &Budget, value: &Value) -> Result<(), Error> {
    let stored = |value: &Value| is_namespace(value);
    let inside_kwargs = value.is_kwargs()
        && value
            .try_iter()
            .is_ok_and(|mut keys| keys.any(|key| value.get_item(&key).is_ok_and(|v| stored(&v))));
    if stored(value) || inside_kwargs {
        budget.check()?;
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "a namespace cannot be stored in another value or passed to a filter",
        ));
    }
    Ok(())
}

/// A loop's iterable, watching the clock at each step.
#[derive(Debug)]
struct Watched {
    inner: Value,
    budget: Arc<Budget>,
}

struct WatchedIter {
    inner: ValueIter,
    budget: Arc<Budget>,
}

impl Iterator for WatchedIter {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        // Out of time: the loop ends here and the render fails after it.
        self.budget.check().ok()?;
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl Object for Watched {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.inner.try_iter() {
            Ok(inner) => Enumerator::Iter(Box::new(WatchedIter {
                inner,
                budget: Arc::clone(&self.budget),
            })),
            Err(_) => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.inner.len()
    }
}

/// Filters that return one of their arguments or a scalar: nothing to count.
const UNBUILDING_FILTERS: &[&str] = &[
    "length", "count", "first", "last", "default", "d", "attr", "int", "float", "abs", "round",
    "bool", "min", "max",
];

/// minijinja's built-in filters, each to be guarded.
fn builtin_filters() -> Vec<(&'static str, Value)> {
    use minijinja::filters as f;
    vec![
        ("safe", Value::from_function(f::safe)),
        ("escape", Value::from_function(f::escape)),
        ("e", Value::from_function(f::escape)),
        ("lower", Value::from_function(f::lower)),
        ("upper", Value::from_function(f::upper)),
        ("title", Value::from_function(f::title)),
        ("capitalize", Value::from_function(f::capitalize)),
        ("replace", Value::from_function(f::replace)),
        ("length", Value::from_function(f::length)),
        ("count", Value::from_function(f::length)),
        ("dictsort", Value::from_function(f::dictsort)),
        ("items", Value::from_function(f::items)),
        ("reverse", Value::from_function(f::reverse)),
        ("trim", Value::from_function(f::trim)),
        ("join", Value::from_function(f::join)),
        ("split", Value::from_function(f::split)),
        ("lines", Value::from_function(f::lines)),
        ("default", Value::from_function(f::default)),
        ("d", Value::from_function(f::default)),
        ("round", Value::from_function(f::round)),
        ("abs", Value::from_function(f::abs)),
        ("int", Value::from_function(f::int)),
        ("float", Value::from_function(f::float)),
        ("attr", Value::from_function(f::attr)),
        ("first", Value::from_function(f::first)),
        ("last", Value::from_function(f::last)),
        ("min", Value::from_function(f::min)),
        ("max", Value::from_function(f::max)),
        ("sort", Value::from_function(f::sort)),
        ("list", Value::from_function(f::list)),
        ("string", Value::from_function(f::string)),
        ("bool", Value::from_function(f::bool)),
        ("batch", Value::from_function(f::batch)),
        ("slice", Value::from_function(f::slice)),
        ("sum", Value::from_function(f::sum)),
        ("indent", Value::from_function(f::indent)),
        ("select", Value::from_function(f::select)),
        ("reject", Value::from_function(f::reject)),
        ("selectattr", Value::from_function(f::selectattr)),
        ("rejectattr", Value::from_function(f::rejectattr)),
        ("map", Value::from_function(f::map)),
        ("groupby", Value::from_function(f::groupby)),
        ("unique", Value::from_function(f::unique)),
        ("chain", Value::from_function(f::chain)),
        ("zip", Value::from_function(f::zip)),
        ("pprint", Value::from_function(f::pprint)),
        ("format", Value::from_function(f::format)),
    ]
}

/// Integers among the arguments (keyword arguments included).
fn integers(args: &[Value]) -> impl Iterator<Item = u128> + '_ {
    args.iter()
        .flat_map(|arg| {
            if arg.is_kwargs() {
                arg.try_iter()
                    .map(|keys| keys.filter_map(|key| arg.get_item(&key).ok()).collect())
                    .unwrap_or_default()
            } else {
                vec![arg.clone()]
            }
        })
        .filter(Value::is_integer)
        .filter_map(|value| i128::try_from(value).ok())
        .map(i128::unsigned_abs)
}

fn string_len(value: Option<&Value>) -> u128 {
    value.and_then(Value::as_str).map_or(0, str::len) as u128
}

/// The most the amplifying filters may build beyond their input, known
/// before they run (the others build at most a few times their input).
fn amplified(name: &str, args: &[Value], budget: &Budget) -> Result<u128, Error> {
    let value = args.first().cloned().unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default();
    Ok(match name {
        "join" => {
            let items = value.try_iter().map_or(0, Iterator::count) as u128;
            let joiner = rest
                .iter()
                .map(|arg| string_len(Some(arg)))
                .max()
                .unwrap_or(0);
            items.saturating_mul(joiner)
        }
        "replace" => {
            let text = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            let (from, to) = (
                rest.first().and_then(Value::as_str).unwrap_or(""),
                string_len(rest.get(1)),
            );
            let hits = if from.is_empty() {
                text.chars().count() + 1
            } else {
                text.matches(from).count()
            };
            (hits as u128).saturating_mul(to)
        }
        "indent" => {
            let lines = value.as_str().map_or(1, |text| text.lines().count() + 1) as u128;
            lines.saturating_mul(integers(rest).max().unwrap_or(4))
        }
        "format" => {
            let format = value.as_str().unwrap_or("");
            // Widths and precisions written in the format, and any given as `*`.
            let written: u128 = format
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|digits| digits.parse::<u128>().ok())
                .fold(0, u128::saturating_add);
            let starred = if format.contains('*') {
                integers(rest).fold(0, u128::saturating_add)
            } else {
                0
            };
            let mut arguments = 0u128;
            for arg in rest {
                arguments = arguments.saturating_add(u128::from(budget.measure(arg)?));
            }
            written.saturating_add(starred).saturating_add(arguments)
        }
        "batch" | "slice" => {
            let count = integers(rest.get(..1).unwrap_or_default())
                .next()
                .unwrap_or(0);
            let mut fill = 0;
            for arg in rest.get(1..).unwrap_or_default() {
                fill = fill.max(u128::from(budget.measure(arg)?));
            }
            count.saturating_mul(fill.saturating_add(16))
        }
        _ => 0,
    })
}

fn guarded_filter(
    name: &'static str,
    filter: Value,
    budget: Arc<Budget>,
) -> impl Fn(&State, Rest<Value>) -> Result<Value, Error> + Send + Sync + 'static {
    move |state, args| {
        budget.check()?;
        for arg in args.iter().skip(1) {
            no_namespace(&budget, arg)?;
        }
        let builds = !UNBUILDING_FILTERS.contains(&name);
        if builds {
            let input = match args.first() {
                Some(value) => budget.measure(value)?,
                None => 0,
            };
            budget.fits(u128::from(input).saturating_add(amplified(name, &args, &budget)?))?;
        }
        let result = filter.call(state, &args)?;
        if builds {
            budget.charge(&result)?;
        }
        Ok(result)
    }
}

/// The environment a step's field renders in: strict, fuelled, guarded.
fn environment(budget: &Arc<Budget>, fuel: u64) -> Environment<'static> {
    let mut environment = plain_environment();
    environment.set_fuel(Some(fuel));
    for (name, filter) in builtin_filters() {
        environment.add_filter(name, guarded_filter(name, filter, Arc::clone(budget)));
    }
    // Filters some minijinja features add: not guarded, so not offered.
    for name in ["tojson", "urlencode"] {
        environment.remove_filter(name);
    }
    for name in ["dict", "namespace", "debug"] {
        let Some((_, function)) = environment.globals().find(|(global, _)| *global == name) else {
            continue;
        };
        let budget = Arc::clone(budget);
        environment.add_function(name, move |state: &State, args: Rest<Value>| {
            budget.check()?;
            for arg in args.iter() {
                no_namespace(&budget, arg)?;
            }
            let result = function.call(state, &args)?;
            budget.charge(&result)?;
            Ok(result)
        });
    }
    for (name, op) in [
        ("__mw_add", ast::BinOpKind::Add),
        ("__mw_mul", ast::BinOpKind::Mul),
        ("__mw_concat", ast::BinOpKind::Concat),
    ] {
        let budget = Arc::clone(budget);
        environment.add_function(name, move |left: Value, right: Value| {
            budget.check()?;
            let size = predicted(op, &left, &right, budget.remaining())
                .map_err(|limit| budget.fail(limit))?;
            budget.fits(size)?;
            let result = operate(op, &left, &right)?;
            budget.charge(&result)?;
            Ok(result)
        });
    }
    let list_budget = Arc::clone(budget);
    environment.add_function("__mw_list", move |items: Rest<Value>| {
        list_budget.check()?;
        for item in items.iter() {
            no_namespace(&list_budget, item)?;
        }
        let list = Value::from(items.0);
        list_budget.charge(&list)?;
        Ok(list)
    });
    let map_budget = Arc::clone(budget);
    environment.add_function("__mw_map", move |pairs: Rest<Value>| {
        map_budget.check()?;
        for item in pairs.iter() {
            no_namespace(&map_budget, item)?;
        }
        let map = Value::from_iter(
            pairs
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default())),
        );
        map_budget.charge(&map)?;
        Ok(map)
    });
    let assign_budget = Arc::clone(budget);
    environment.add_function("__mw_assign", move |value: Value| {
        no_namespace(&assign_budget, &value)?;
        Ok(value)
    });
    let loop_budget = Arc::clone(budget);
    environment.add_function("__mw_iter", move |iterable: Value| {
        loop_budget.check()?;
        if iterable.is_undefined() {
            return Err(Error::from(ErrorKind::UndefinedError));
        }
        iterable.try_iter()?;
        Ok(Value::from_object(Watched {
            inner: iterable,
            budget: Arc::clone(&loop_budget),
        }))
    });
    let output_budget = Arc::clone(budget);
    environment.set_formatter(move |out, state, value| {
        output_budget.check()?;
        minijinja::escape_formatter(out, state, value)
    });
    environment
}

/// The field's output, refused past [`MAX_RENDERED_FIELD_BYTES`].
struct FieldOutput<'b> {
    bytes: Vec<u8>,
    budget: &'b Budget,
}

impl io::Write for FieldOutput<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.budget.check().map_err(io::Error::other)?;
        if self.bytes.len() + buf.len() > MAX_RENDERED_FIELD_BYTES {
            self.budget.fail(Limit::Output);
            return Err(io::Error::other("the field is too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Render one field within the step's budget; the sentence for a field
/// error when it fails.
pub(super) fn render(budget: &Arc<Budget>, text: &str, context: &Value) -> Result<String, String> {
    if budget.check().is_err() {
        return Err(budget.exceeded().unwrap_or(Limit::Time).sentence());
    }
    let prepared = prepare(text)?;
    if let Some(failure) = prepared.certain_failure {
        return Err(failure);
    }
    let fuel = budget.fuel.load(Ordering::Relaxed);
    if fuel == 0 {
        return Err(Limit::Fuel.sentence());
    }
    let environment = environment(budget, fuel);
    let template = environment
        .template_from_str(&prepared.source)
        .map_err(|error| format!("is not a valid template ({})", error.kind()))?;
    let mut output = FieldOutput {
        bytes: Vec::new(),
        budget,
    };
    let outcome = template.render_captured_to(context, &mut output);
    let failed = |error: Option<&Error>| {
        let limit = budget.exceeded().or_else(|| {
            error
                .filter(|error| error.kind() == ErrorKind::OutOfFuel)
                .map(|_| Limit::Fuel)
        });
        match (limit, error) {
            (Some(limit), _) => limit.sentence(),
            (None, Some(error)) => {
                format!("could not be filled from the input ({})", error.kind())
            }
            (None, None) => unguardable(),
        }
    };
    match outcome {
        Err(error) => Err(failed(Some(&error))),
        Ok(captured) => {
            let (spent, _) = captured.state().fuel_levels().unwrap_or((fuel, 0));
            budget.fuel.fetch_sub(spent.min(fuel), Ordering::Relaxed);
            drop(captured);
            if budget.exceeded().is_some() {
                return Err(failed(None));
            }
            String::from_utf8(output.bytes).map_err(|_| unguardable())
        }
    }
}
