//! Abuse of the password forms (issue "Abuse-proof"): password hashing is
//! bounded in concurrency and memory, sign-in is limited per account and per
//! client address with `Retry-After`, and the first-run setup creates
//! exactly one owner.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, assert_problem, spawn_app, spawn_app_with};

const RIGHT_PASSWORD: &str = "the right password";

/// Post a pre-sign-in form the way a browser does: the CSRF field equal to
/// the `mw_csrf` cookie (anyone can make both match; that is the point).
async fn post(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = form.to_vec();
    fields.push(("csrf", "forms-token"));
    let mut request = app
        .client
        .post(app.url(path))
        .header("cookie", "mw_csrf=forms-token")
        .form(&fields);
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the server answers")
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    post(
        app,
        "/signin",
        &[("email", email), ("password", password)],
        &[],
    )
    .await
}

async fn owner(app: &TestApp, email: &str) {
    let email = domain::EmailAddress::parse(email).unwrap();
    mailwright::auth::accounts::create_local_user(&app.store, &email, RIGHT_PASSWORD, None)
        .await
        .expect("the account is created");
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// A line of `/proc/self/status` in MiB (`VmRSS`: resident now; `VmHWM`:
/// the most that was ever resident).
fn memory_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    kib / 1024.0
}

/// Run the futures at once (each its own task), in order of the results.
async fn join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("the request task does not panic"));
    }
    outputs
}

/// `count` wrong sign-ins at once (for the email `emails(n)`): each
/// answer's status and `Retry-After`.
async fn burst(
    app: &TestApp,
    count: usize,
    emails: impl Fn(usize) -> String,
) -> Vec<(u16, Option<u64>)> {
    let requests: Vec<_> = (0..count)
        .map(|n| {
            let client = app.client.clone();
            let url = app.url("/signin");
            let email = emails(n);
            async move {
                let response = client
                    .post(url)
                    .header("cookie", "mw_csrf=forms-token")
                    .form(&[
                        ("email", email.as_str()),
                        ("password", "a wrong password"),
                        ("csrf", "forms-token"),
                    ])
                    .send()
                    .await
                    .expect("the server answers");
                (response.status().as_u16(), retry_after(&response))
            }
        })
        .collect();
    join_all(requests).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_wrong_sign_ins_keep_rss_under_200_mb_and_get_429s() {
    let app = spawn_app().await;
    owner(&app, "ada@example.com").await;
    let before = memory_mib("VmRSS");
    let started = Instant::now();

    // Half at the owner's account, half at strangers' addresses.
    let answers = burst(&app, 64, |n| {
        if n % 2 == 0 {
            "ada@example.com".to_owned()
        } else {
            format!("someone{n}@example.com")
        }
    })
    .await;
    let took = started.elapsed();
    let (peak, after) = (memory_mib("VmHWM"), memory_mib("VmRSS"));
    let count = |status: u16| answers.iter().filter(|(s, _)| *s == status).count();
    eprintln!(
        "64 concurrent wrong sign-ins in {took:?}: {} × 401, {} × 429, {} × 503; RSS {before:.1} MiB before, {after:.1} MiB after, peak {peak:.1} MiB",
        count(401),
        count(429),
        count(503)
    );
    assert_eq!(count(401) + count(429) + count(503), 64, "{answers:?}");
    assert!(
        count(429) >= 44,
        "the address allows 20 a minute: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|(status, _)| *status != 401)
            .all(|(_, retry)| retry.is_some_and(|seconds| seconds >= 1)),
        "every refusal says when to retry: {answers:?}"
    );
    assert!(peak < 200.0, "peak RSS {peak:.1} MiB");
    assert!(after < 200.0, "RSS after the burst {after:.1} MiB");

    // The right password waits too now: the owner's account took up to five
    // wrong passwords, and the address has used up its allowance.
    let locked = sign_in(&app, "ada@example.com", RIGHT_PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(retry_after(&locked).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_run_a_few_at_a_time_in_bounded_memory() {
    // Limits out of the way: every one of the 64 reaches password checking.
    let app =
        spawn_app_with(&[("MAILWRIGHT_SIGNIN_ATTEMPTS_PER_MINUTE", "100000".to_owned())]).await;
    owner(&app, "ada@example.com").await;
    let before = memory_mib("VmRSS");
    let started = Instant::now();
    let answers = burst(&app, 64, |n| format!("someone{n}@example.com")).await;
    let took = started.elapsed();
    let (peak, after) = (memory_mib("VmHWM"), memory_mib("VmRSS"));
    let count = |status: u16| answers.iter().filter(|(s, _)| *s == status).count();
    eprintln!(
        "64 concurrent password checks in {took:?}: {} × 401, {} × 503; RSS {before:.1} MiB before, {after:.1} MiB after, peak {peak:.1} MiB",
        count(401),
        count(503)
    );
    assert_eq!(count(401) + count(503), 64, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(status, _)| *status == 503)
            .all(|(_, retry)| retry.is_some()),
        "a busy answer says when to retry: {answers:?}"
    );
    // Two hashes at 19 MiB each at a time, whatever the load.
    assert!(peak < 200.0, "peak RSS {peak:.1} MiB");
    assert!(after < 200.0, "RSS after the burst {after:.1} MiB");
    assert_eq!(
        sign_in(&app, "ada@example.com", RIGHT_PASSWORD)
            .await
            .status(),
        303,
        "the owner still signs in"
    );
}

#[tokio::test]
async fn an_account_locks_after_wrong_passwords_even_for_the_right_one_then_opens_again() {
    // Three wrong passwords, then a lockout of 1.8 s (the cap, as configured).
    let app = spawn_app_with(&[
        ("MAILWRIGHT_SIGNIN_MAX_FAILURES", "3".to_owned()),
        ("MAILWRIGHT_SIGNIN_LOCKOUT_MINUTES", "0.03".to_owned()),
    ])
    .await;
    owner(&app, "ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            sign_in(&app, "ada@example.com", "a wrong password")
                .await
                .status(),
            401
        );
    }

    let locked = sign_in(&app, "ADA@example.com", RIGHT_PASSWORD).await;
    assert_eq!(locked.status(), 429, "locked, even with the right password");
    let wait = retry_after(&locked).expect("Retry-After");
    assert!((1..=2).contains(&wait), "{wait}");
    let page = locked.text().await.unwrap();
    assert!(
        page.contains("Too many wrong passwords for this account"),
        "{page}"
    );

    // An API client gets the contract's problem.
    let problem = post(
        &app,
        "/signin",
        &[("email", "ada@example.com"), ("password", RIGHT_PASSWORD)],
        &[("accept", "application/json")],
    )
    .await;
    assert!(retry_after(&problem).is_some());
    let problem = assert_problem(problem, 429, "rate_limited").await;
    assert!(problem["retry_after"].as_u64().is_some(), "{problem}");

    // Once the lockout has passed (retrying as Retry-After says), the right
    // password works.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut wait = Duration::from_secs(wait);
    let signed_in = loop {
        tokio::time::sleep(wait).await;
        let answer = sign_in(&app, "ada@example.com", RIGHT_PASSWORD).await;
        if answer.status() != 429 {
            break answer;
        }
        assert!(Instant::now() < deadline, "still locked after 15 s");
        wait = Duration::from_secs(retry_after(&answer).expect("Retry-After"));
    };
    assert_eq!(signed_in.status(), 303);
    assert_eq!(
        signed_in.headers().get("location").unwrap(),
        "/",
        "signed in"
    );

    // Success forgets the wrong passwords: the next mistake is just a 401.
    assert_eq!(
        sign_in(&app, "ada@example.com", "a wrong password")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn other_accounts_from_the_same_address_are_limited_by_the_address_limit() {
    let app = spawn_app_with(&[("MAILWRIGHT_SIGNIN_ATTEMPTS_PER_MINUTE", "4".to_owned())]).await;
    owner(&app, "ada@example.com").await;
    for n in 0..4 {
        let answer = post(
            &app,
            "/signin",
            &[
                ("email", &format!("guess{n}@example.com")),
                ("password", "a wrong password"),
            ],
            // Not a trusted proxy's header: changes nothing.
            &[("x-forwarded-for", &format!("203.0.113.{n}"))],
        )
        .await;
        assert_eq!(answer.status(), 401);
    }
    // A fifth account, never tried before, even with its right password.
    let refused = sign_in(&app, "ada@example.com", RIGHT_PASSWORD).await;
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused).expect("Retry-After");
    assert!(
        (1..=15).contains(&wait),
        "4 a minute: the next in 15 s at most: {wait}"
    );
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Too many sign-in attempts from your network"),
        "{page}"
    );
}

#[tokio::test]
async fn a_trusted_proxy_s_forwarded_address_is_what_is_counted() {
    let app = spawn_app_with(&[
        ("MAILWRIGHT_SIGNIN_ATTEMPTS_PER_MINUTE", "2".to_owned()),
        ("MAILWRIGHT_TRUSTED_PROXIES", "127.0.0.1, ::1".to_owned()),
    ])
    .await;
    owner(&app, "ada@example.com").await;
    let from = |client: &'static str| {
        let app = &app;
        async move {
            post(
                app,
                "/signin",
                &[("email", "x@example.com"), ("password", "a wrong password")],
                &[("x-forwarded-for", client)],
            )
            .await
            .status()
        }
    };
    assert_eq!(from("198.51.100.1").await, 401);
    assert_eq!(from("198.51.100.1").await, 401);
    assert_eq!(from("198.51.100.1").await, 429);
    assert_eq!(
        from("198.51.100.2").await,
        401,
        "another client behind the proxy has its own allowance"
    );
    // The proxy appends the address it sees; what the client wrote in
    // front of it is not believed, so it buys no new allowance.
    assert_eq!(from("203.0.113.50, 198.51.100.2").await, 401);
    assert_eq!(from("203.0.113.51, 198.51.100.2").await, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_setups_create_exactly_one_owner_and_later_ones_join_nothing() {
    let app = spawn_app().await;
    let setups: Vec<_> = (0..8)
        .map(|n| {
            let client = app.client.clone();
            let url = app.url("/setup");
            async move {
                let email = format!("owner{n}@example.com");
                let answer = client
                    .post(url)
                    .header("cookie", "mw_csrf=forms-token")
                    .form(&[
                        ("email", email.as_str()),
                        ("password", RIGHT_PASSWORD),
                        ("workspace", "Acme"),
                        ("csrf", "forms-token"),
                    ])
                    .send()
                    .await
                    .expect("the server answers");
                let location = answer
                    .headers()
                    .get("location")
                    .map(|value| value.to_str().unwrap().to_owned());
                (email, answer.status().as_u16(), location)
            }
        })
        .collect();
    let answers = join_all(setups).await;
    let winners: Vec<_> = answers
        .iter()
        .filter(|(_, status, location)| *status == 303 && location.as_deref() == Some("/"))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one setup wins: {answers:?}");
    assert!(
        answers
            .iter()
            .all(|(_, status, _)| *status == 303 || *status == 409),
        "{answers:?}"
    );
    assert_eq!(app.store.user_count().await.unwrap(), 1);
    let winner = &winners[0].0;
    let (user, _) = app.store.local_account(winner).await.unwrap().unwrap();
    let workspace = app
        .store
        .first_workspace_of(user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.store.workspace(workspace).await.unwrap().name, "Acme");
    assert_eq!(
        app.store.membership(workspace, user.id).await.unwrap(),
        store::tenancy::Role::Owner
    );
    for (email, ..) in answers.iter().filter(|(email, ..)| email != winner) {
        assert!(
            app.store.local_account(email).await.unwrap().is_none(),
            "{email} has no account"
        );
    }

    // A later setup naming the operator's workspace joins nothing.
    let later = post(
        &app,
        "/setup",
        &[
            ("email", "mallory@example.com"),
            ("password", RIGHT_PASSWORD),
            ("workspace", "Acme"),
        ],
        &[],
    )
    .await;
    assert_eq!(later.status(), 409);
    assert!(
        later
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|cookie| !cookie.to_str().unwrap().starts_with("mw_session=")),
        "not signed in"
    );
    let page = later.text().await.unwrap();
    assert!(page.contains("already set up"), "{page}");
    let later = post(
        &app,
        "/setup",
        &[
            ("email", "mallory@example.com"),
            ("password", RIGHT_PASSWORD),
            ("workspace", "Acme"),
        ],
        &[("accept", "application/json")],
    )
    .await;
    assert_problem(later, 409, "conflict").await;
    assert_eq!(app.store.user_count().await.unwrap(), 1);
    assert!(
        app.store
            .local_account("mallory@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(app.store.workspaces_named("Acme").await.unwrap().len(), 1);
}
