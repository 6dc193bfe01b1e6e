//! Headers that tell browsers how to treat our answers: never sniff a type,
//! never show our pages in someone else's frame, and (for HTML pages) run
//! only scripts we serve ourselves, no inline ones.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// For HTML pages. Styles may be inline (the pages carry their own); scripts
/// come only from this origin (`/static/...`); forms may post anywhere
/// because "Connect Gmail" redirects to Google's consent screen.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub async fn add(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        );
    }
    response
}

/// The pages' one script (a file, since the pages allow no inline
/// scripts): it asks before a form marked `data-confirm` is sent, copies the
/// text a `data-copy` button points to, shows each `<time data-local>` in
/// the viewer's own time zone, and shows the workflow form's fields for the
/// chosen trigger and actions. Every page works without it.
pub async fn ui_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        UI_JS,
    )
        .into_response()
}

pub const UI_SCRIPT_PATH: &str = "/static/ui.js";

const UI_JS: &str = r#""use strict";
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var text = (source.value !== undefined ? source.value : source.textContent).trim();
  var said = button.textContent;
  function tell(words) {
    button.textContent = words;
    setTimeout(function () { button.textContent = said; }, 2000);
  }
  function selectIt() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    tell("Selected: press Ctrl+C");
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { tell("Copied"); }, selectIt);
  } else {
    selectIt();
  }
});

// The workflow form: show only the fields the chosen trigger or action
// uses (without this script every field shows, and the server ignores the
// ones the action does not take).
function showFieldsFor(select) {
  var kind = select.getAttribute("data-shows");
  var scope = kind === "action" ? select.closest("fieldset") : select.form;
  if (!scope) return;
  var parts = scope.querySelectorAll("[data-for-" + kind + "]");
  for (var i = 0; i < parts.length; i++) {
    var wanted = parts[i].getAttribute("data-for-" + kind).split(" ");
    parts[i].hidden = wanted.indexOf(select.value) < 0;
  }
}
document.addEventListener("change", function (event) {
  if (event.target.hasAttribute && event.target.hasAttribute("data-shows")) {
    showFieldsFor(event.target);
  }
});

function showLocalTimes() {
  var format = { weekday: "short", day: "numeric", month: "short", year: "numeric",
                 hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
  var times = document.querySelectorAll("time[data-local]");
  for (var i = 0; i < times.length; i++) {
    var at = new Date(times[i].getAttribute("datetime"));
    if (isNaN(at.getTime())) continue;
    times[i].title = times[i].getAttribute("datetime");
    times[i].textContent = at.toLocaleString(undefined, format);
  }
}
function ready() {
  showLocalTimes();
  var selects = document.querySelectorAll("select[data-shows]");
  for (var i = 0; i < selects.length; i++) showFieldsFor(selects[i]);
}
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", ready);
} else {
  ready();
}
"#;
