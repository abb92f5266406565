//! The patient's copy of their record as one JSON document (SPEC §10): `GET /v1/me/export`
//! for the patient, `GET /v1/patients/{id}/export` for their care team and admins.
//!
//! The document is written as it is read, in slices of [`SLICE`] rows inside one read
//! transaction, and streamed: a record of five years of check-ins never sits in memory whole,
//! and every part of it is from the same moment. Sections: the patient (profile, phase
//! history, care team), consents, the accounting of disclosures, the access log, alerts
//! (each with its history) and check-ins, each newest first.
//!
//! With `?format=fhir` the same reading writes a FHIR R4 `Bundle` instead
//! ([`crate::domain::fhir`] maps each row): the `Patient`, a `Consent` per consent, and per
//! check-in its `QuestionnaireResponse` and `Observation`s, as `application/fhir+json`.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use chrono::{NaiveDate, SecondsFormat, Utc};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use super::alerts::{self as alert_views, Alert, AlertChange};
use super::extract::Query;
use crate::auth::Caller;
use crate::domain::fhir;
use crate::domain::validation::FieldError;
use crate::error::{ApiError, Problem};
use crate::service::access_log;
use crate::service::check_ins::local_today;
use crate::service::export::{self as service, Subject};
use crate::state::AppState;
use crate::store::alerts::{self, AlertFilter, Scope};
use crate::store::{check_ins, consents, disclosures, patients, DbConnection};

/// Rows read per statement.
pub const SLICE: i64 = 200;
/// Bytes buffered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// What to export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (the default): aftercare's own document; `fhir`: a FHIR R4 `Bundle` (type
    /// `collection`, `application/fhir+json`) of the `Patient`, their `Consent`s, and per
    /// check-in a `QuestionnaireResponse` to `/fhir/Questionnaire/daily-check-in` and its
    /// `Observation`s.
    #[param(example = "fhir", value_type = Option<super::vocabulary::ExportFormat>)]
    pub format: Option<String>,
}

/// An alert with its history, as exported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedAlert {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// Every change to it, oldest first.
    pub history: Vec<AlertChange>,
}

/// The export document's shape (streamed; described here for clients).
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    /// `aftercare-export/1`.
    #[schema(example = "aftercare-export/1")]
    pub format: String,
    /// When the export was taken.
    pub exported_at: chrono::DateTime<Utc>,
    /// Profile, phase history and care team.
    pub patient: super::patients::PatientDetail,
    /// Consents given, newest first.
    pub consents: Vec<super::consents::Consent>,
    /// The accounting of disclosures, newest first.
    pub disclosures: Vec<super::disclosures::Disclosure>,
    /// Who else read the record, newest first.
    pub access_log: Vec<super::access_log::AccessLogEntry>,
    /// Alerts with their history, newest first.
    pub alerts: Vec<ExportedAlert>,
    /// Every check-in, newest first.
    pub check_ins: Vec<super::check_ins::CheckIn>,
}

/// The document as it is written: JSON text into chunks for the response stream.
struct Out {
    tx: mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buf: Vec<u8>,
    /// No element written yet in the array last opened.
    first: bool,
}

impl Out {
    fn raw(&mut self, s: &str) -> Result<(), ApiError> {
        self.buf.extend_from_slice(s.as_bytes());
        self.flush_if_full()
    }

    fn value<T: Serialize>(&mut self, v: &T) -> Result<(), ApiError> {
        serde_json::to_writer(&mut self.buf, v).map_err(ApiError::internal)?;
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> Result<(), ApiError> {
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ApiError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = web::Bytes::from(std::mem::take(&mut self.buf));
        // The client went away: stop reading.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| ApiError::internal("export reader gone"))
    }

    /// Opens a JSON array: the next [`Out::element`] is its first.
    fn open(&mut self, s: &str) -> Result<(), ApiError> {
        self.first = true;
        self.raw(s)
    }

    /// One element of the array last opened.
    fn element<T: Serialize>(&mut self, v: &T) -> Result<(), ApiError> {
        if !self.first {
            self.raw(",")?;
        }
        self.first = false;
        self.value(v)
    }

    /// Every row `fetch` gives, `SLICE` rows at a time after the last row's position, each
    /// handed to `each`.
    fn rows<R>(
        &mut self,
        conn: &mut DbConnection,
        mut fetch: impl FnMut(&mut DbConnection, Option<&str>) -> Result<Vec<R>, ApiError>,
        position: impl Fn(&R) -> String,
        mut each: impl FnMut(&mut Self, &mut DbConnection, R) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let mut before: Option<String> = None;
        loop {
            let rows = fetch(conn, before.as_deref())?;
            let full = i64::try_from(rows.len()).unwrap_or(0) >= SLICE;
            before = rows.last().map(&position);
            for r in rows {
                each(self, conn, r)?;
            }
            if !full || before.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// A JSON array section of the document, one element per row.
    fn section<R, V: Serialize>(
        &mut self,
        conn: &mut DbConnection,
        name: &str,
        fetch: impl FnMut(&mut DbConnection, Option<&str>) -> Result<Vec<R>, ApiError>,
        position: impl Fn(&R) -> String,
        mut view: impl FnMut(&mut DbConnection, R) -> Result<V, ApiError>,
    ) -> Result<(), ApiError> {
        self.open(&format!(",\"{name}\":["))?;
        self.rows(conn, fetch, position, |out, c, r| {
            let v = view(c, r)?;
            out.element(&v)
        })?;
        self.raw("]")
    }
}

fn write(conn: &mut DbConnection, who: &Subject, out: &mut Out) -> Result<(), ApiError> {
    let id = who.patient_id.as_str();
    let tz = who.timezone.as_str();
    let today = local_today(tz);
    let patient = patients::find(conn, id)?.ok_or(ApiError::NotFound)?;
    out.raw("{\"format\":\"aftercare-export/1\",\"exported_at\":")?;
    out.value(&Utc::now())?;
    out.raw(",\"patient\":")?;
    out.value(&super::patients::detail(conn, id)?)?;
    out.section(
        conn,
        "consents",
        |c, b| Ok(consents::for_patient(c, id, b, SLICE)?),
        |r| r.id.clone(),
        |_, r| Ok(super::consents::view(r, today)),
    )?;
    out.section(
        conn,
        "disclosures",
        |c, b| Ok(disclosures::for_patient(c, id, b, SLICE)?),
        |r| r.0.id.clone(),
        |_, r| Ok(super::disclosures::view(r)),
    )?;
    out.section(
        conn,
        "access_log",
        |c, b| access_log::entries(c, id, b, SLICE),
        |e| e.id.clone(),
        |_, e| Ok(super::access_log::AccessLogEntry::from(e)),
    )?;
    let filter = AlertFilter {
        patient_id: Some(id.to_owned()),
        ..AlertFilter::default()
    };
    out.section(
        conn,
        "alerts",
        |c, b| {
            Ok(alerts::list(
                c,
                Scope::Organisation(&patient.organisation_id),
                &filter,
                b,
                SLICE,
            )?)
        },
        |a| a.id.clone(),
        |c, a| {
            let history = alerts::changes(c, &a.id)?
                .into_iter()
                .map(AlertChange::from)
                .collect();
            Ok(ExportedAlert {
                alert: alert_views::view(c, a)?,
                history,
            })
        },
    )?;
    out.section(
        conn,
        "check_ins",
        |c, b| {
            let before = b.and_then(|d| d.parse::<NaiveDate>().ok());
            Ok(check_ins::page(c, id, None, None, before, SLICE)?)
        },
        |r| r.date.to_string(),
        |_, r| Ok(super::check_ins::view(r, tz)),
    )?;
    out.raw("}")?;
    out.flush()
}

/// The FHIR R4 form: one `Bundle` of type `collection` with the `Patient`, a `Consent` per
/// consent, and per check-in its `QuestionnaireResponse` and `Observation`s
/// ([`crate::domain::fhir`]).
fn write_fhir(
    conn: &mut DbConnection,
    who: &Subject,
    base: &str,
    out: &mut Out,
) -> Result<(), ApiError> {
    let id = who.patient_id.as_str();
    let tz = who.timezone.as_str();
    let today = local_today(tz);
    let detail = super::patients::detail(conn, id)?;
    let team: Vec<&str> = detail
        .care_team
        .iter()
        .map(|m| m.display_name.as_str())
        .collect();
    out.raw("{\"resourceType\":\"Bundle\",\"id\":")?;
    out.value(&uuid::Uuid::new_v4().to_string())?;
    out.raw(",\"type\":\"collection\",\"timestamp\":")?;
    out.value(&Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true))?;
    out.open(",\"entry\":[")?;
    out.element(&fhir::entry(fhir::patient(
        id,
        &detail.display_name,
        &detail.email,
        detail.country.as_deref(),
        &team,
    )))?;
    out.rows(
        conn,
        |c, b| Ok(consents::for_patient(c, id, b, SLICE)?),
        |r| r.id.clone(),
        |out, _, r| {
            let view = serde_json::to_value(super::consents::view(r, today))
                .map_err(ApiError::internal)?;
            out.element(&fhir::entry(fhir::consent(base, id, &view)))
        },
    )?;
    out.rows(
        conn,
        |c, b| {
            let before = b.and_then(|d| d.parse::<NaiveDate>().ok());
            Ok(check_ins::page(c, id, None, None, before, SLICE)?)
        },
        |r| r.date.to_string(),
        |out, _, r| {
            let check_in_id = r.id.clone();
            let view =
                serde_json::to_value(super::check_ins::view(r, tz)).map_err(ApiError::internal)?;
            for e in fhir::check_in_entries(base, id, &view, &check_in_id, || {
                uuid::Uuid::new_v4().to_string()
            }) {
                out.element(&e)?;
            }
            Ok(())
        },
    )?;
    out.raw("]}")?;
    out.flush()
}

async fn stream(state: &AppState, who: Subject, format: Format) -> Result<HttpResponse, ApiError> {
    let (tx, rx) = mpsc::channel(4);
    let store = state.store.clone();
    let base = state.public_url();
    let (content_type, suffix) = match format {
        Format::Json => ("application/json", "json"),
        Format::Fhir => (fhir::MEDIA_TYPE, "fhir.json"),
    };
    let filename = format!("aftercare-export-{}.{suffix}", Utc::now().date_naive());
    actix_web::rt::task::spawn_blocking(move || {
        let mut out = Out {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
            first: true,
        };
        let result = store.conn().map_err(ApiError::from).and_then(|mut conn| {
            conn.transaction(|conn| -> Result<(), ApiError> {
                if matches!(&**conn, DbConnection::Postgresql(_)) {
                    // Every slice from the same snapshot.
                    conn.batch_execute(
                        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                    )?;
                }
                match format {
                    Format::Json => write(conn, &who, &mut out),
                    Format::Fhir => write_fhir(conn, &who, &base, &mut out),
                }
            })
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "export stopped before its end");
            // The client sees the body end early (invalid JSON), never a partial record
            // that looks whole.
            let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body))
}

/// The export's two forms.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    /// aftercare's own document.
    Json,
    /// A FHIR R4 `Bundle`.
    Fhir,
}

fn check_format(q: &ExportQuery) -> Result<Format, ApiError> {
    match q.format.as_deref() {
        None | Some("json") => Ok(Format::Json),
        Some("fhir") => Ok(Format::Fhir),
        Some(_) => Err(ApiError::BadQuery(vec![FieldError::new(
            "format",
            "must be json or fhir",
        )])),
    }
}

/// Download everything aftercare holds about you, as one JSON document (patients): profile,
/// phase history, consents, disclosures, who read your record, alerts with their history and
/// every check-in.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "The record, streamed: aftercare's own document, or with `format=fhir` a FHIR R4 Bundle", content(
            (Export = "application/json"),
            (Object = "application/fhir+json"),
        )),
        (status = 400, description = "Unknown format or query parameter", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
    )
)]
#[get("/me/export")]
pub async fn my_export(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = check_format(&query.0)?;
    let who = service::begin(&state, &caller, None).await?;
    stream(&state, who, format).await
}

/// Export a patient's record (admins, or a counsellor on the care team; a sign-in within the
/// last 10 minutes). Audited.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Patient id"), ExportQuery),
    responses(
        (status = 200, description = "The record, streamed: aftercare's own document, or with `format=fhir` a FHIR R4 Bundle", content(
            (Export = "application/json"),
            (Object = "application/fhir+json"),
        )),
        (status = 400, description = "Unknown format or query parameter", body = Problem),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not within the last 10 minutes", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}/export")]
pub async fn patient_export(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = check_format(&query.0)?;
    let who = service::begin(&state, &caller, Some(path.into_inner())).await?;
    stream(&state, who, format).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::vocabulary::{ExportFormat, Vocabulary};

    #[test]
    fn the_documented_formats_are_the_ones_read() {
        for word in ExportFormat::WORDS {
            let q = ExportQuery {
                format: Some((*word).to_owned()),
            };
            assert!(check_format(&q).is_ok(), "{word}");
        }
        let q = ExportQuery {
            format: Some("xml".into()),
        };
        assert!(check_format(&q).is_err());
    }
}
