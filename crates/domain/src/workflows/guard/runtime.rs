//! At run time: the budget one step's render may spend, and the guards the
//! rewritten template calls.

use super::rewrite::unguardable;
use super::*;

/// What one step's render may still spend.
#[derive(Debug)]
pub(crate) struct Budget {
    deadline: Instant,
    fuel: AtomicU64,
    built: AtomicU64,
    exceeded: Mutex<Option<Limit>>,
}

impl Budget {
    pub(crate) fn new(deadline: Instant) -> Arc<Budget> {
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
pub(crate) fn weight(value: &Value, limit: u64) -> Result<u64, Limit> {
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
pub(crate) fn predicted(
    op: ast::BinOpKind,
    left: &Value,
    right: &Value,
    limit: u64,
) -> Result<u128, Limit> {
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
pub(crate) fn operate(op: ast::BinOpKind, left: &Value, right: &Value) -> Result<Value, Error> {
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
pub(crate) fn plain_environment() -> Environment<'static> {
    let mut environment = Environment::new();
    // A missing input is an error, not an empty string sent to someone.
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment
}

/// The type name minijinja's namespaces have (private to it).
pub(crate) fn is_namespace(value: &Value) -> bool {
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

pub(crate) fn no_namespace(budget: &Budget, value: &Value) -> Result<(), Error> {
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
pub(crate) struct Watched {
    inner: Value,
    budget: Arc<Budget>,
}

pub(crate) struct WatchedIter {
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
pub(crate) const UNBUILDING_FILTERS: &[&str] = &[
    "length", "count", "first", "last", "default", "d", "attr", "int", "float", "abs", "round",
    "bool", "min", "max",
];

/// minijinja's built-in filters, each to be guarded.
pub(crate) fn builtin_filters() -> Vec<(&'static str, Value)> {
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
        // A value as JSON: how an `http.post` body quotes what the input
        // holds (a subject with a `"` in it stays valid JSON).
        ("tojson", Value::from_function(f::tojson)),
        ("zip", Value::from_function(f::zip)),
        ("pprint", Value::from_function(f::pprint)),
        ("format", Value::from_function(f::format)),
    ]
}

/// Integers among the arguments (keyword arguments included).
pub(crate) fn integers(args: &[Value]) -> impl Iterator<Item = u128> + '_ {
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

pub(crate) fn string_len(value: Option<&Value>) -> u128 {
    value.and_then(Value::as_str).map_or(0, str::len) as u128
}

/// The most the amplifying filters may build beyond their input, known
/// before they run (the others build at most a few times their input).
pub(crate) fn amplified(name: &str, args: &[Value], budget: &Budget) -> Result<u128, Error> {
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

pub(crate) fn guarded_filter(
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
pub(crate) fn environment(budget: &Arc<Budget>, fuel: u64) -> Environment<'static> {
    let mut environment = plain_environment();
    environment.set_fuel(Some(fuel));
    for (name, filter) in builtin_filters() {
        environment.add_filter(name, guarded_filter(name, filter, Arc::clone(budget)));
    }
    // A filter a minijinja feature adds: not guarded, so not offered.
    environment.remove_filter("urlencode");
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
pub(crate) struct FieldOutput<'b> {
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
pub(crate) fn render(budget: &Arc<Budget>, text: &str, context: &Value) -> Result<String, String> {
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
