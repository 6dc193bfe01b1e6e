//! The consent and error pages. Self-contained HTML, every interpolated
//! value escaped.

use std::fmt::Write;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

// Readable on a phone: long scope URLs and redirect URIs wrap, and the
// form never grows wider than the screen.
const STYLE: &str = "body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}\
.badge{background:#b00;color:#fff;padding:.2em .6em;border-radius:.3em;font-size:.8em}\
p,li,code,label{overflow-wrap:anywhere}ul{padding-left:1.2em}\
input[type=email]{max-width:100%;box-sizing:border-box}\
fieldset{margin:1em 0;min-width:0}button{margin:0 1em .5em 0;padding:.4em 1.2em;font:inherit}";

const HEAD: &str = "<meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\">";

pub struct ConsentPage<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub accounts: &'a [String],
    pub default_account: &'a str,
    /// The original query string, carried through the POST unchanged.
    pub request_query: &'a str,
    pub form_action: &'a str,
}

pub fn consent_page(page: &ConsentPage<'_>) -> String {
    let mut scopes = String::new();
    for scope in page.scopes {
        let scope = escape(scope);
        let _ = writeln!(
            scopes,
            "<li><label><input type=\"checkbox\" name=\"granted_scope\" value=\"{scope}\" checked> {scope}</label></li>"
        );
    }
    let mut accounts = String::new();
    for account in page.accounts {
        let _ = writeln!(accounts, "<option value=\"{}\">", escape(account));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head>{HEAD}\
<title>Sandbox: Sign in with Google (emulated)</title><style>{STYLE}</style></head><body>\n\
<p><span class=\"badge\">Sandbox</span> This is Mailwright's Google emulator, not Google.</p>\n\
<h1>Sandbox consent</h1>\n\
<p><strong>{client}</strong> wants to access your Google Account and will be sent back to <code>{redirect}</code>.</p>\n\
<form method=\"post\" action=\"{action}\">\n\
<input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
<label>Account <input type=\"email\" name=\"email\" value=\"{default}\" list=\"accounts\" required></label>\n\
<datalist id=\"accounts\">\n{accounts}</datalist>\n\
<fieldset><legend>Requested access</legend><ul>\n{scopes}</ul></fieldset>\n\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n\
</form></body></html>\n",
        client = escape(page.client_id),
        redirect = escape(page.redirect_uri),
        action = escape(page.form_action),
        request = escape(page.request_query),
        default = escape(page.default_account),
    )
}

pub fn error_page(error: &str, description: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head>{HEAD}\
<title>Sandbox: Error 400: {error}</title><style>{STYLE}</style></head><body>\n\
<p><span class=\"badge\">Sandbox</span> This is Mailwright's Google emulator, not Google.</p>\n\
<h1>Access blocked: authorization error</h1>\n\
<p>Error: <code id=\"error\">{error}</code></p>\n<p id=\"error_description\">{description}</p>\n\
</body></html>\n",
        error = escape(error),
        description = escape(description),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_page_escapes_everything_it_echoes() {
        let scopes = vec!["<script>x</script>".to_owned()];
        let accounts = vec!["a\"b@example.com".to_owned()];
        let html = consent_page(&ConsentPage {
            client_id: "<b>client</b>",
            redirect_uri: "http://x/?a=1&b=2",
            scopes: &scopes,
            accounts: &accounts,
            default_account: "a\"b@example.com",
            request_query: "state=\"><script>",
            form_action: "/o/oauth2/v2/auth",
        });
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>client"));
        assert!(html.contains("&lt;b&gt;client&lt;/b&gt;"));
        assert!(html.contains("http://x/?a=1&amp;b=2"));
        assert!(html.contains("a&quot;b@example.com"));
        assert!(html.contains("Sandbox"));
    }
}
