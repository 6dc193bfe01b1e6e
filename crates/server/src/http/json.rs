//! JSON request bodies parsed into types at the edge: a body that is not
//! JSON is a 400, one of the wrong shape a 422, each naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::problem::{ApiError, FieldError};

/// Like `axum::Json`, with our problem answers on every rejection.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let mime = value.split(';').next().unwrap_or_default().trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::Validation(vec![FieldError::new(
                "Content-Type",
                "must be application/json",
            )]));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                // A body sent without a length hits the limit while it is
                // read: the same 413 as one whose length says it is too big.
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::BodyTooLarge
                } else {
                    ApiError::Validation(vec![FieldError::new("body", "could not be read")])
                }
            })?;
        parse(&body).map(ApiJson)
    }
}

/// Deserialize `body`, naming the field that is wrong, in words a client's
/// developer reads (no Rust type names).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::MalformedBody(format!(
                "The body is not valid JSON ({}).",
                plain_words(&inner.to_string())
            ));
        }
        // serde reports a missing field at its parent; name the field itself.
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned();
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(missing) if path == "." => missing.to_owned(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        ApiError::Validation(vec![FieldError::new(field, plain_words(&message))])
    })
}

/// serde's messages with the Rust types said as JSON ones: "invalid type:
/// integer `3`, expected struct Step with 7 elements" becomes "must be an
/// object, not the number 3".
fn plain_words(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or_default();
    if message.starts_with("missing field `") {
        return "is required".to_owned();
    }
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!(
            "must be {}, not {}",
            json_kind(expected),
            found_words(found)
        );
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("must hold {}", expected.replace("a sequence of ", ""));
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!("must be {expected} (got {found})");
    }
    if let Some(rest) = message.strip_prefix("unknown field ")
        && let Some((found, _)) = rest.split_once(", expected ")
    {
        return format!("has an unknown field {found}");
    }
    message.to_owned()
}

/// What serde expected, as a JSON kind.
fn json_kind(expected: &str) -> &'static str {
    let expected = expected.trim();
    if expected.starts_with("struct ")
        || expected.starts_with("a map")
        || expected.contains("tagged enum")
        || expected == "map"
    {
        "an object"
    } else if expected.contains("sequence") || expected.starts_with("tuple") {
        "a list"
    } else if expected.contains("string") || expected.contains("char") {
        "text"
    } else if expected.contains("bool") {
        "true or false"
    } else if [
        "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32", "f64",
        "integer", "number", "float",
    ]
    .iter()
    .any(|number| expected.contains(number))
    {
        "a number"
    } else if expected.starts_with("enum ") || expected.contains("variant") {
        "one of the allowed values"
    } else {
        "a different kind of value"
    }
}

/// What serde found, as JSON words.
fn found_words(found: &str) -> String {
    let found = found.trim();
    for (serde, words) in [
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("string ", "the text "),
        ("boolean ", ""),
    ] {
        if let Some(value) = found.strip_prefix(serde) {
            return format!("{words}{}", value.trim_matches('`'));
        }
    }
    match found {
        "map" => "an object".to_owned(),
        "sequence" => "a list".to_owned(),
        "null" | "unit value" => "null".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        subject: String,
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        steps: Vec<Inner>,
        enabled: Option<bool>,
    }

    fn field_error(body: &str) -> (String, String) {
        match parse::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => {
                (errors[0].field.clone(), errors[0].message.clone())
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn valid_json_of_the_wrong_shape_is_a_field_error_in_json_words() {
        assert_eq!(
            field_error(r#"{"name": "n", "steps": [3]}"#),
            (
                "steps[0]".into(),
                "must be an object, not the number 3".into()
            )
        );
        assert_eq!(
            field_error(r#"{"name": "n", "steps": {}}"#),
            ("steps".into(), "must be a list, not an object".into())
        );
        assert_eq!(
            field_error(r#"{"name": 5, "steps": []}"#),
            ("name".into(), "must be text, not the number 5".into())
        );
        assert_eq!(
            field_error(r#"{"name": "n", "steps": [{"subject": "s", "count": "x"}]}"#),
            (
                "steps[0].count".into(),
                "must be a number, not the text \"x\"".into()
            )
        );
        assert_eq!(
            field_error(r#"{"steps": []}"#),
            ("name".into(), "is required".into())
        );
        for body in [
            r#"{"name": "n", "steps": [3]}"#,
            r#"[1]"#,
            r#"{"name": true}"#,
        ] {
            let (_, message) = field_error(body);
            assert!(
                !message.contains("struct")
                    && !message.contains("u32")
                    && !message.contains("Inner"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_malformed() {
        assert!(matches!(
            parse::<Outer>(b"{not json"),
            Err(ApiError::MalformedBody(_))
        ));
    }
}
