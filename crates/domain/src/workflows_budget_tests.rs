//! The render budget: each limit is hit, ordinary templates render as
//! plain minijinja renders them, and creation refuses only what must fail.

use super::*;
use serde_json::json;

fn render(template: &str, input: Value) -> Result<String, String> {
    let budget = guard::Budget::new(Instant::now() + RENDER_TIME_LIMIT);
    let context = minijinja::context! { input => minijinja::Value::from_serialize(&input) };
    guard::render(&budget, template, &context)
}

fn plain(template: &str, input: Value) -> Result<String, String> {
    let mut environment = minijinja::Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    environment
        .render_str(template, minijinja::context! { input => input })
        .map_err(|error| format!("could not be filled from the input ({})", error.kind()))
}

fn check(template: &str) -> Result<(), String> {
    let step = Step {
        action: Action::EmailSendSystem,
        integration_id: None,
        to: vec!["ops@example.com".into()],
        cc: vec![],
        bcc: vec![],
        subject: "s".into(),
        body: template.into(),
        condition: None,
        url: None,
        thread_id: None,
        label: None,
        message_id: None,
    };
    match step.validate(0).into_iter().next() {
        None => Ok(()),
        Some(problem) => {
            assert_eq!(problem.field, "steps[0].body");
            Err(problem.message)
        }
    }
}

#[test]
fn guarded_templates_render_as_before() {
    let input = json!({
        "name": "Ada", "n": 3, "price": 2.5, "items": [
            {"name": "b", "qty": 2}, {"name": "a", "qty": 1}],
        "map": {"x": 1, "y": 2}, "text": "one\ntwo", "words": ["x", "y", "z"],
    });
    for template in [
        "Hello {{ input.name }}!",
        "{{ input.name ~ ' ' ~ input.n }} {{ input.n + 1 }} {{ input.n * input.price }} {{ 'ab' * input.n }}",
        "{{ (input.name ~ '!') * 2 ~ -input.n * 2 }} {{ 2 ** 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ input.n - 1 }}",
        "{{ [input.name, (input.n ~ 'x')] }} {{ [1, 2] + [input.n] }} {{ ([input.n] * 2)|list }}",
        "{{ {'k': input.name, input.name: [input.n, {'z': 1}]} }} {{ {'a': 1} }} {{ {} }} {{ [] }}",
        "{% set a, b = input.n, input.name %}{{ a }}{{ b }}{% set t = input.n, (input.n) %}{{ t }}",
        "{% set t = (input.n, input.name) %}{{ t }}{% set u = (input.n,) %}{{ u }}",
        "{% set ns = namespace(total=0) %}{% for item in input.items %}{% set ns.total = ns.total + item.qty %}{% endfor %}{{ ns.total }}",
        "{% for item in input.items|sort(attribute='name') %}{{ loop.index }}/{{ loop.length }}/{{ loop.revindex }}{{ item.name }}{% if loop.last %}.{% endif %}{% endfor %}",
        "{% for (k, v) in input.map|items %}{{ k }}={{ v }};{% endfor %}{% for k, v in input.map|dictsort %}{{ k }}{{ v }}{% endfor %}",
        "{% for x in input.words if x != 'y' %}{{ x }}{% else %}none{% endfor %}{% for x in [] %}{% else %}empty{% endfor %}",
        "{% for i in range(input.n) %}{% for j in range(2) %}{{ i * j }}{% endfor %}{% endfor %}",
        "{{ input.text|indent(2) }}|{{ input.text|indent(width=3, first=true) }}|{{ input.words|join(', ') }}",
        "{{ input.items|map(attribute='name')|join }} {{ input.items|selectattr('qty', 'gt', 1)|list|length }}",
        "{{ input.words|batch(2, 'q')|list }} {{ input.words|slice(2)|list }} {{ input.name|replace('a', 'AA') }}",
        "{{ '%s is %d'|format(input.name, input.n) }} {{ input.name|upper|lower|title }} {{ input.words|reverse|list }}",
        "{{ 'a' if input.n > 2 else 'b' }} {{ input.name not in input.words }} {{ 'x' in input.words }} {{ input.n is odd }}",
        "{%- if input.name is defined -%}  {{ input.name[1:] }} {{ input.words[0] }} {{ input.map.x }} {%- endif %}",
        "{% with greeting = 'Hi ' ~ input.name %}{{ greeting }}{% endwith %}{{ dict(a=input.n, b=[1]) }}",
        "{{ range(3)|list }} {{ range(10)|sum }} {{ input.words|first ~ input.words|last }} {{ input.missing|default('d') }}",
        "{{ input.name ~ input.n ~ input.price ~ input.words ~ input.map }} {{ input.words + ['w'] }} {{ input.name + 'x' }}",
        "{{ input.name\n  ~ '\n' }}{{ (input.n\n * 2) }}",
        "{{ (input.name ~ 'b')|upper ~ input.n }} {{ input.missing|default('x' ~ input.name) ~ 'c' }} {{ dict(a=1 + input.n) }}",
        "{{ [input.name ~ 'b']|join(',' ~ input.n) }} {{ input.map.x ~ input.words[0] ~ (input.n) }} {{ -(input.n) * 2 }}",
        "{{ 'a ~ b' ~ \"c*d\" ~ input.name }} {{ {'a:b': input.n, 'c]': '{'} }} {{ ['x]', input.n, '}'] }}",
        "{{- input.name ~ '!' -}} {# {{ a ~ b }} #} {% raw %}{{ a ~ b }}{% endraw %}",
        "{% for x in input.words %}{{ loop.cycle('a' ~ input.n, 'c') }}{% endfor %}{% set x = [1] %}{% set x = x + [2] %}{{ x }}",
        "{{ 1 < input.n < 5 }} {{ input.n is divisibleby 3 }} {{ input.n is divisibleby(1 + 2) }} {{ (1, input.n) ~ 'x' }}",
        "{% set a = input.name %}{% set b = a ~ a, a %}{{ b }}{% set c = a, a ~ 'z' %}{{ c }}",
        "{% for x in input.words + ['q'] %}{{ x }}{% endfor %}{% for x in input.words if x ~ 'a' != 'ya' %}{{ x }}{% endfor %}",
        "{% set ns = namespace(a='') %}{% for w in input.words %}{% set ns.a = ns.a ~ w * 2 %}{% endfor %}{{ ns.a }}",
        "{{ {input.name ~ 'k': 1} }} {{ {'a': input.words[1:]} }} {{ {(input.name): 1} }} {{ input.words|join(', ' ~ input.name)|upper }}",
        "{{ dict(a=input.n * 2, **{'b': input.n}) }} {{ input.items[0].name ~ input.items[1]['name'] }} {{ input.n * -1 }} {{ -input.n ~ '' }}",
        "Grüße {{ input.name ~ '🚚' ~ 'ö' * 2 }} {% if input.name ~ 'x' == 'Adax' %}yes{% endif %} {% set x = input.n if input.n > 1 else 0 %}{{ x }}",
        "{{ 'a' 'b' ~ input.name }} {{ ((input.name) ~ input.n) }} {{ [[1], [input.n]] }} {{ [input.n]|batch(2)|list }}",
        "{{ [input.missing]|length }}",
        "{{ input.words|map('upper')|join }} {{ input.words|select('ne', 'x')|list }} {{ input.items|groupby('qty')|length }}",
        "{{ input.missing ~ 'x' }}",
        "{% for x in input.missing %}{{ x }}{% endfor %}",
        "{{ input.missing + 1 }}",
        "{% for x in input.n %}{% endfor %}",
    ] {
        assert_eq!(
            render(template, input.clone()),
            plain(template, input.clone()),
            "{template}"
        );
    }
}

#[test]
fn rendering_stops_at_each_limit_and_names_it() {
    let input = json!({"n": 100000, "big": 10_000_000, "s": "x", "w": 300000});
    let fuel = render(
        "{% for a in range(input.n) %}{% for b in range(input.n) %}{% for c in range(input.n) %}x{% endfor %}{% endfor %}{% endfor %}",
        input.clone(),
    );
    assert!(fuel.unwrap_err().contains("100000 template instructions"));

    let started = Instant::now();
    let built = render("{{ 'x' * input.big }}", input.clone()).unwrap_err();
    assert!(built.contains("4194304 bytes"), "{built}");
    assert!(started.elapsed() < Duration::from_secs(1));
    for template in [
        "{{ input.s * input.big }}",
        "{{ input.s * 100000000.0 }}",
        "{{ [input.s] * 100000000.0 }}",
        "{{ (range(1000) * 1000)|list|length }}",
        "{{ range(100000)|join(input.s * 100) }}",
        "{{ (input.s * 200)|replace('', input.s * 100000) }}",
        "{{ 'a\nb'|indent(input.big) }}",
        "{{ ('%' ~ input.big ~ 's')|format('x') }}",
        "{{ [1]|batch(input.big, 'fill')|list }}",
        "{% set ns = namespace(s=input.s * 1000) %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}",
        "{% set ns = namespace(m=1) %}{% for i in range(40) %}{% set ns.m = {'a': ns.m, 'b': ns.m} %}{% endfor %}",
    ] {
        let refused = render(template, input.clone()).unwrap_err();
        assert!(refused.contains("4194304 bytes"), "{template}: {refused}");
    }

    let output = render("{{ input.s * input.w }}", input.clone()).unwrap_err();
    assert!(output.contains("262144 bytes"), "{output}");
    let output = render(
        "{% for i in range(input.n) %}{{ input.s * 100 }}{% endfor %}",
        input.clone(),
    );
    assert!(output.unwrap_err().contains("262144 bytes"));

    let nested = render(
        "{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = [ns.l] %}{% endfor %}",
        input.clone(),
    );
    assert!(nested.unwrap_err().contains("nested more than 64"));

    for cycle in [
        "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
        "{% set ns = namespace() %}{% set ns.me = [ns] %}{{ ns }}",
        "{% set ns = namespace() %}{% set ns.me = [1]|batch(2, ns) %}{{ ns }}",
        "{% set ns = namespace() %}{% set ns.me = dict(a=ns) %}{{ ns }}",
        "{% set ns = namespace() %}{% set ns.me = {'a': ns} %}{{ ns }}",
        "{% set ns = namespace() %}{% set other = namespace(a=ns) %}",
    ] {
        let refused = render(cycle, input.clone()).unwrap_err();
        assert!(refused.contains("invalid operation"), "{cycle}: {refused}");
    }

    let budget = guard::Budget::new(Instant::now());
    let context = minijinja::context! { input => minijinja::Value::from_serialize(&input) };
    let late = guard::render(
        &budget,
        "{% for i in range(10) %}{{ i }}{% endfor %}",
        &context,
    );
    assert!(late.unwrap_err().contains("longer than 2 s"));
}

#[test]
fn the_fuel_is_shared_by_a_steps_fields() {
    let loops = "{% for i in range(input.n) %}{% endfor %}";
    let step = Step {
        action: Action::EmailSendSystem,
        integration_id: None,
        to: vec!["ops@example.com".into()],
        cc: vec![],
        bcc: vec![],
        subject: loops.into(),
        body: loops.into(),
        condition: None,
        url: None,
        thread_id: None,
        label: None,
        message_id: None,
    };
    // One field alone fits (about 3 instructions an iteration), both do not.
    assert!(render(loops, json!({"n": 20000})).is_ok());
    let failed = step.render(0, &json!({"n": 20000})).unwrap_err();
    assert_eq!(failed.field, "steps[0].body");
    assert!(failed.message.contains("template instructions"));
}

#[test]
fn what_the_template_alone_shows_is_refused_at_creation() {
    let nested = "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}";
    assert!(check(nested).unwrap_err().contains("at most 100000"));
    assert!(check("{% for a in range(100000) %}{% endfor %}").is_err());
    assert!(
        check("{% for a in range(2000) %}{% for b in range(50) %}{% endfor %}{% endfor %}")
            .is_err()
    );
    assert!(check("{% for a in range(1000) %}{{ a }}{% endfor %}").is_ok());

    let started = Instant::now();
    let repeated = check("{{ 'x' * 10000000 }}").unwrap_err();
    assert!(repeated.contains("10000000 bytes"), "{repeated}");
    // Nothing is folded (allocated) at creation.
    let huge = check("{{ ('x' * 100000000) ~ ('x' * 100000000) ~ ('x' * 100000000) }}");
    assert!(huge.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(check("{{ 'x' * 300000 }}").unwrap_err().contains("262144"));
    let many = "{% if input.x %}{{ 'x' * 4000000 }}{% endif %}".repeat(20_000);
    let started = Instant::now();
    assert!(check(&many).is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        check("{{ range(1000000)|length }}")
            .unwrap_err()
            .contains("range")
    );

    // Only what runs whatever the input is judged.
    assert!(check("{% if input.debug %}{{ 'x' * 10000000 }}{% endif %}").is_ok());
    assert!(
        check("{% for i in input.items %}{% for a in range(100000) %}{% endfor %}{% endfor %}")
            .is_ok()
    );
    assert!(
        check(
            "{% for i in range(10) if input.x %}{% for a in range(99999) %}{% endfor %}{% endfor %}"
        )
        .is_ok()
    );
    assert!(check("{% set range = dict %}{% for a in range(a=1) %}{% endfor %}").is_ok());
    assert!(check("{{ 'x' * 1000 }} {{ input.n * 10000000 }}").is_ok());

    for unsupported in [
        "{% set x %}{{ input.a }}{% endset %}",
        "{% filter upper %}x{% endfilter %}",
        "{% for x in input.tree recursive %}{{ loop(x.children) }}{% endfor %}",
        "{% include 'other' %}",
        "{% block b %}x{% endblock %}",
        "{{ __mw_mul('x', 3) }}",
        "{% set __mw_concat = 1 %}",
        "{% set ns = namespace() %}{% set ns.a, ns.b = 1, 2 %}",
    ] {
        assert!(check(unsupported).is_err(), "{unsupported}");
    }
    assert!(
        check("{{ input.name")
            .unwrap_err()
            .contains("not a valid template")
    );
}
