//! Request extractors whose failures are problem+json naming the offending field.
//!
//! actix's own `Json` accepts 2 MB, ignores unknown fields unless the type refuses them and
//! answers in plain text; these read at most [`JSON_LIMIT`] bytes and report where the body
//! went wrong (`withdrawal.yawning`, `craving`).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::strict;
use crate::domain::validation::FieldError;
use crate::error::ApiError;

/// The largest JSON body accepted, in bytes.
pub const JSON_LIMIT: usize = 64 * 1024;

/// A JSON request body, strictly parsed.
#[derive(Debug)]
pub struct Json<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Turns a serde error at a path into a field error, naming unknown fields themselves.
fn field_error(path: &serde_path_to_error::Path, message: &str) -> FieldError {
    let mut field = path.to_string();
    if field == "." {
        field = String::new();
    }
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some(name) = rest.split('`').next() {
            let full = if field.is_empty() || field.ends_with(name) {
                if field.is_empty() {
                    name.to_owned()
                } else {
                    field.clone()
                }
            } else {
                format!("{field}.{name}")
            };
            return FieldError::new(full, "is not a known field");
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(name) = rest.split('`').next() {
            let full = if field.is_empty() {
                name.to_owned()
            } else {
                format!("{field}.{name}")
            };
            return FieldError::new(full, "is required");
        }
    }
    if field.is_empty() {
        field = "body".into();
    }
    FieldError::new(field, plain_words(&message))
}

/// serde's "invalid type: string \"high\", expected i64" as a person would say it.
fn plain_words(message: &str) -> String {
    let (Some(found), Some(expected)) = (
        message
            .strip_prefix("invalid type: ")
            .and_then(|m| m.split(", expected ").next()),
        message.split(", expected ").nth(1),
    ) else {
        return without_type_names(message);
    };
    let wanted = match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
            "a whole number"
        }
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "text",
        "a sequence" => "a list",
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "an object" => "an object",
        e if e.starts_with("enum ") || e == "one of the listed names" => "one of the listed names",
        e if e.contains("RFC 3339") || e.contains("date") => return format!("must be {e}"),
        _ => return without_type_names(message),
    };
    let kind = found
        .split([' ', '`', '"'])
        .take_while(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let found = match kind.as_str() {
        "string" => "text",
        "integer" => "a whole number",
        "floating point" => "a decimal number",
        "boolean" => "true or false",
        "map" => "an object",
        "sequence" => "a list",
        "null" => "null",
        _ => "something else",
    };
    format!("must be {wanted}, not {found}")
}

/// serde names the Rust type it expected (`struct LoginRequest`, `enum Role`); a client needs
/// the kind of value, and the server's internals stay its own.
fn without_type_names(message: &str) -> String {
    let mut out = Vec::new();
    let mut words = message.split(' ').peekable();
    while let Some(w) = words.next() {
        match w {
            "struct" | "enum" | "tuple" if words.peek().is_some() => {
                let mut kind = w;
                if w == "tuple" && words.peek() == Some(&"struct") {
                    words.next();
                    kind = "struct";
                }
                let name = words.next().unwrap_or_default();
                let tail: String = name
                    .chars()
                    .skip_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(format!(
                    "{}{tail}",
                    if kind == "enum" {
                        "one of the listed names"
                    } else {
                        "an object"
                    }
                ));
            }
            _ => out.push(w.to_owned()),
        }
    }
    out.join(" ")
}

/// Parses a JSON document: 400 when it is not JSON (or is empty).
fn parse_document(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "The request body is empty; a JSON object is expected.".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("The body is not valid JSON: {e}.")))
}

/// 422 naming the first string the database could not store (one holding a NUL).
fn refuse_nul(value: &serde_json::Value) -> Result<(), FieldError> {
    match strict::find_nul(value) {
        Some(field) => Err(FieldError::new(
            field,
            "must not contain the NUL character (\\u0000)",
        )),
        None => Ok(()),
    }
}

/// Reads a parsed document into `T` strictly (objects where objects are declared), naming the
/// field that does not fit.
fn read_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, FieldError> {
    strict::read::<T>(value).map_err(|e| field_error(e.path(), &e.inner().to_string()))
}

/// Parses a JSON document into `T`: 400 when it is not JSON, 422 naming the field when it
/// does not fit `T` (an array where an object is declared included) or holds a string the
/// database cannot store.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_document(bytes)?;
    refuse_nul(&value).map_err(|e| ApiError::Validation(vec![e]))?;
    read_value(&value).map_err(|e| ApiError::Validation(vec![e]))
}

/// Like [`parse_json`], but a NUL in a string value is replaced (with U+FFFD) instead of
/// refused; returns the paths of the values changed. For bodies whose free text must never
/// cost the rest (a check-in reporting thoughts of self-harm, an SOS).
pub fn parse_json_replacing_nul<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, Vec<String>), ApiError> {
    let mut value = parse_document(bytes)?;
    let replaced = strict::replace_nul(&mut value);
    // Keys are not replaced: one holding a NUL is still refused.
    refuse_nul(&value).map_err(|e| ApiError::Validation(vec![e]))?;
    let body = read_value(&value).map_err(|e| ApiError::Validation(vec![e]))?;
    Ok((body, replaced))
}

/// Reads a JSON value already parsed (one entry of a list, say) into `T`, naming the field,
/// relative to the value, that does not fit or holds a string the database cannot store.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, FieldError> {
    refuse_nul(&value)?;
    read_value(&value)
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads a whole body of at most `limit` bytes; larger is a 413.
async fn read_limited(
    declared: Option<usize>,
    mut payload: Payload,
    limit: usize,
) -> Result<actix_web::web::Bytes, ApiError> {
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            e if super::deadline::is_timeout(&e) => ApiError::RequestTimeout,
            _ => ApiError::BadRequest("The request body could not be read.".into()),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A JSON request's body: 413 when too large (declared or actual), 415 when not JSON.
async fn json_body(
    json: bool,
    declared: Option<usize>,
    payload: Payload,
    limit: usize,
) -> Result<actix_web::web::Bytes, ApiError> {
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge);
    }
    if !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    read_limited(declared, payload, limit).await
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let declared = declared_length(req);
        let payload = payload.take();
        Box::pin(async move {
            let body = json_body(json, declared, payload, JSON_LIMIT).await?;
            parse_json(&body).map(Json)
        })
    }
}

/// A JSON request body whose NUL characters in string values are replaced (U+FFFD) rather
/// than refused, with the paths of the values changed, so the response can say so. Otherwise
/// as strict as [`Json`].
#[derive(Debug)]
pub struct JsonReplacingNul<T> {
    /// The parsed body.
    pub body: T,
    /// The fields whose text had a NUL replaced.
    pub replaced: Vec<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonReplacingNul<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let declared = declared_length(req);
        let payload = payload.take();
        Box::pin(async move {
            let bytes = json_body(json, declared, payload, JSON_LIMIT).await?;
            let (body, replaced) = parse_json_replacing_nul(&bytes)?;
            Ok(Self { body, replaced })
        })
    }
}

/// A JSON body for a creating `POST`, with its optional `Idempotency-Key` (the header's key and
/// the hash of the exact body bytes), so a retry can be recognised. `LIMIT` is the largest
/// body accepted, in bytes: [`JSON_LIMIT`] unless a route needs more (a history import).
#[derive(Debug)]
pub struct IdempotentJson<T, const LIMIT: usize = JSON_LIMIT> {
    /// The parsed body.
    pub body: T,
    /// The request's idempotency key, if it sent one.
    pub key: Option<crate::service::idempotency::Key>,
}

impl<T: DeserializeOwned + 'static, const LIMIT: usize> FromRequest for IdempotentJson<T, LIMIT> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let declared = declared_length(req);
        let header = req
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().map(str::to_owned));
        let payload = payload.take();
        Box::pin(async move {
            let bytes = json_body(json, declared, payload, LIMIT).await?;
            let header = match header {
                Some(Ok(v)) => Some(v),
                Some(Err(_)) => {
                    return Err(ApiError::field(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    ))
                }
                None => None,
            };
            let body = parse_json(&bytes)?;
            let key = crate::service::idempotency::Key::parse(header.as_deref(), &bytes)?;
            Ok(Self { body, key })
        })
    }
}

/// A raw body (for endpoints whose body is optional), under the same size limit as JSON.
#[derive(Debug)]
pub struct LimitedBody(pub actix_web::web::Bytes);

impl FromRequest for LimitedBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = declared_length(req);
        let payload = payload.take();
        Box::pin(async move {
            read_limited(declared, payload, JSON_LIMIT)
                .await
                .map(LimitedBody)
        })
    }
}

/// Query-string parameters, strictly parsed; a bad value is a 400 naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(req.query_string()));
        let result = serde_path_to_error::deserialize::<_, T>(de)
            .map(Query)
            .map_err(|e| {
                let fe = field_error(e.path(), &e.inner().to_string());
                let detail = format!("Query parameter `{}`: {}.", fe.field, fe.message);
                tracing::debug!(%detail, "bad query");
                ApiError::BadQuery(vec![fe])
            });
        std::future::ready(result)
    }
}

fn form_urlencoded_parse(q: &str) -> url::form_urlencoded::Parse<'_> {
    url::form_urlencoded::parse(q.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn type_errors_read_as_plain_words() {
        assert_eq!(
            plain_words("invalid type: string \"high\", expected i64"),
            "must be a whole number, not text"
        );
        assert_eq!(
            plain_words("invalid type: integer `1`, expected a boolean"),
            "must be true or false, not a whole number"
        );
        assert_eq!(
            plain_words("invalid type: floating point `7.5`, expected i32"),
            "must be a whole number, not a decimal number"
        );
        assert_eq!(plain_words("something else"), "something else");
        assert_eq!(
            plain_words("invalid type: sequence, expected an object"),
            "must be an object, not a list"
        );
        assert_eq!(
            plain_words("invalid type: map, expected enum Role"),
            "must be one of the listed names, not an object"
        );
        assert_eq!(
            plain_words("invalid length 1, expected struct LoginRequest with 2 elements"),
            "invalid length 1, expected an object with 2 elements"
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: i32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
        n: i32,
    }

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Validation(v) => v.into_iter().map(|f| f.field).collect(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn unknown_top_level_field_is_named() {
        let e = parse_json::<Outer>(br#"{"inner":{"a":1},"n":1,"role":"admin"}"#).unwrap_err();
        assert_eq!(fields(e), vec!["role"]);
    }

    #[test]
    fn unknown_nested_field_is_named_with_its_path() {
        let e = parse_json::<Outer>(br#"{"inner":{"a":1,"b":2},"n":1}"#).unwrap_err();
        assert_eq!(fields(e), vec!["inner.b"]);
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse_json::<Outer>(br#"{"inner":{"a":"x"},"n":1}"#).unwrap_err();
        assert_eq!(fields(e), vec!["inner.a"]);
    }

    #[test]
    fn missing_nested_field_is_named_with_its_path() {
        let e = parse_json::<Outer>(br#"{"inner":{},"n":1}"#).unwrap_err();
        assert_eq!(fields(e), vec!["inner.a"]);
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Outer>(b"{\"n\":"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Outer>(b""),
            Err(ApiError::BadRequest(_))
        ));
    }
}
