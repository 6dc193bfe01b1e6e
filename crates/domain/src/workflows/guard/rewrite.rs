//! Before a run: read a template, refuse what no budget bounds, and rewrite
//! every operator, loop and filter into a guarded call.

use super::runtime::{operate, predicted, weight};
use super::*;

pub(crate) fn prepare(text: &str) -> Result<Prepared, String> {
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

pub(crate) fn unguardable() -> String {
    "could not be prepared for rendering with its budget; write it more simply (and tell us which template it was)".into()
}

/// How often a statement runs on every render: `certain` when it runs
/// whatever the input, then at least `times` times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach {
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
pub(crate) struct Edit {
    start: usize,
    end: usize,
    text: &'static str,
    rank: (u8, i64),
}

pub(crate) fn open(at: usize, text: &'static str, depth: i64) -> Edit {
    // Outer calls open first.
    Edit {
        start: at,
        end: at,
        text,
        rank: (1, depth),
    }
}

pub(crate) fn close(at: usize, depth: i64) -> Edit {
    // Inner calls close first; before anything that opens or replaces here.
    Edit {
        start: at,
        end: at,
        text: ")",
        rank: (0, -depth),
    }
}

pub(crate) fn replace(at: usize, text: &'static str) -> Edit {
    Edit {
        start: at,
        end: at + 1,
        text,
        rank: (2, 0),
    }
}

pub(crate) fn apply(source: &str, mut edits: Vec<Edit>) -> Option<String> {
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

pub(crate) struct Walker<'s> {
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

pub(crate) fn end(expr: &ast::Expr) -> usize {
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

pub(crate) fn is_literal_list(list: &ast::List) -> bool {
    list.items.iter().all(|e| matches!(e, ast::Expr::Const(_)))
}

/// Every statement, depth first.
pub(crate) fn visit_stmts(stmt: &ast::Stmt, f: &mut dyn FnMut(&ast::Stmt)) {
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
pub(crate) fn verify_stmt(stmt: &ast::Stmt) -> bool {
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

pub(crate) fn verify_args(args: &[ast::CallArg]) -> bool {
    args.iter().all(|arg| match arg {
        ast::CallArg::Pos(e)
        | ast::CallArg::Kwarg(_, e)
        | ast::CallArg::PosSplat(e)
        | ast::CallArg::KwargSplat(e) => verify_expr(e),
    })
}

pub(crate) fn verify_expr(expr: &ast::Expr) -> bool {
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
