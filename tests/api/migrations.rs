//! Upgrading a clinic's database: alerts raised before episodes existed are carried over into
//! one episode per patient, and nothing in them is lost.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;

use crate::helpers::{fresh_database, DropDatabase};

const BEFORE_EPISODES: &str = "
INSERT INTO organisations (id, name, risk_policy, crisis_resources, created_at)
    VALUES ('org', 'Harbour', '{}', NULL, '2026-11-20 09:00:00');
INSERT INTO users (id, organisation_id, role, email, password_hash, display_name, timezone,
                   disabled, created_at, updated_at, password_changed_at)
    VALUES ('p1', 'org', 'patient', 'p1@example.org', 'x', 'Pat One', 'UTC', FALSE,
            '2026-11-20 09:00:00', '2026-11-20 09:00:00', '2026-11-20 09:00:00'),
           ('p2', 'org', 'patient', 'p2@example.org', 'x', 'Pat Two', 'UTC', FALSE,
            '2026-11-20 09:00:00', '2026-11-20 09:00:00', '2026-11-20 09:00:00');
INSERT INTO patients (user_id, organisation_id, phase, phase_started_on, created_at)
    VALUES ('p1', 'org', 'aftercare', '2026-11-20', '2026-11-20 09:00:00'),
           ('p2', 'org', 'aftercare', '2026-11-20', '2026-11-20 09:00:00');
INSERT INTO alerts (id, organisation_id, patient_id, rule, severity, severity_rank, status,
                    title, explanation, evidence, check_in_date, occurrences, created_at,
                    updated_at, last_seen_at, escalation_due_at)
    VALUES
    ('a1', 'org', 'p1', 'mood_low', 'warning', 2, 'open', 'Low mood', 'Mood low 3 days.',
     '{\"at_most\": 2}', '2026-11-25', 1, '2026-11-25 10:00:00', '2026-11-25 10:00:00',
     '2026-11-25 10:00:00', NULL),
    ('a2', 'org', 'p1', 'substance_use', 'high', 3, 'acknowledged', 'Use reported',
     'The patient reported use.', '{\"check_ins\": []}', '2026-11-27', 2,
     '2026-11-27 10:00:00', '2026-11-27 10:00:00', '2026-11-28 10:00:00', NULL),
    ('a3', 'org', 'p1', 'craving_high', 'high', 3, 'open', 'Craving', 'Craving 9.',
     '{\"threshold\": 8}', '2026-11-28', 1, '2026-11-28 10:00:00', '2026-11-28 10:00:00',
     '2026-11-28 10:00:00', '2026-11-28 14:00:00'),
    ('a4', 'org', 'p1', 'sleep_poor', 'warning', 2, 'resolved', 'Sleep', 'Sleep short.',
     '{}', '2026-11-21', 1, '2026-11-21 10:00:00', '2026-11-21 10:00:00',
     '2026-11-21 10:00:00', NULL),
    ('a5', 'org', 'p2', 'halt', 'high', 3, 'open', 'HALT', 'Three signals.',
     '{}', '2026-11-29', 1, '2026-11-29 10:00:00', '2026-11-29 10:00:00',
     '2026-11-29 10:00:00', NULL);
";

#[derive(QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    rules: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    findings: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    occurrences: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    note: Option<String>,
}

const READ: &str = "SELECT id, status, rules, findings, occurrences, note FROM alerts ORDER BY id";

#[test]
fn alerts_from_before_episodes_are_carried_over_into_one_per_patient() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = fresh_database(dir.path());
    let _drop = DropDatabase(pg.clone());
    let rows: Vec<Row> = if pg.is_some() {
        let mut c = diesel::PgConnection::establish(&url).unwrap();
        c.run_next_migration(aftercare::store::POSTGRES_MIGRATIONS)
            .unwrap();
        c.batch_execute(BEFORE_EPISODES).unwrap();
        c.run_pending_migrations(aftercare::store::POSTGRES_MIGRATIONS)
            .unwrap();
        diesel::sql_query(READ).load(&mut c).unwrap()
    } else {
        let path = url.trim_start_matches("sqlite://");
        let mut c = diesel::SqliteConnection::establish(path).unwrap();
        c.run_next_migration(aftercare::store::SQLITE_MIGRATIONS)
            .unwrap();
        c.batch_execute(BEFORE_EPISODES).unwrap();
        c.run_pending_migrations(aftercare::store::SQLITE_MIGRATIONS)
            .unwrap();
        diesel::sql_query(READ).load(&mut c).unwrap()
    };
    let by_id = |id: &str| rows.iter().find(|r| r.id == id).unwrap();

    // Patient one had three unresolved alerts: the most severe, then earliest (a2) leads and
    // holds all three findings; the other two are resolved with a note pointing to it.
    let lead = by_id("a2");
    assert_eq!(lead.status, "acknowledged");
    assert_eq!(lead.rules, ",mood_low,substance_use,craving_high,");
    assert_eq!(lead.occurrences, 4);
    let findings: Vec<serde_json::Value> = serde_json::from_str(&lead.findings).unwrap();
    let rules: Vec<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["mood_low", "substance_use", "craving_high"]);
    let mood = &findings[0];
    assert_eq!(mood["explanation"], "Mood low 3 days.");
    assert_eq!(mood["evidence"]["at_most"], 2);
    assert_eq!(mood["first_seen_on"], "2026-11-25");
    assert_eq!(mood["occurrences"], 1);
    for merged in ["a1", "a3"] {
        let r = by_id(merged);
        assert_eq!(r.status, "resolved");
        assert!(r.note.as_deref().unwrap().contains("a2"), "{r:?}");
    }
    // A resolved alert and a patient's single alert keep their own one finding.
    assert_eq!(by_id("a4").status, "resolved");
    assert_eq!(by_id("a4").rules, ",sleep_poor,");
    assert_eq!(by_id("a4").note, None);
    assert_eq!(by_id("a5").status, "open");
    assert_eq!(by_id("a5").rules, ",halt,");
    let f: Vec<serde_json::Value> = serde_json::from_str(&by_id("a5").findings).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["severity"], "high");
    assert_eq!(f[0]["last_seen_on"], "2026-11-29");
}
