-- One alert per episode: a patient has at most one unresolved alert, whose findings (one per
-- rule, JSON) list every rule involved. `rules` (",rule_a,rule_b,") lets the inbox filter by
-- any rule of an episode.
ALTER TABLE alerts ADD COLUMN findings TEXT NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN rules TEXT NOT NULL DEFAULT '';

-- Every existing alert becomes an episode of its own one finding.
UPDATE alerts SET
    findings = json_build_array(json_build_object(
        'rule', rule,
        'severity', severity,
        'title', title,
        'explanation', explanation,
        'evidence', evidence::json,
        'first_seen_on', to_char(COALESCE(check_in_date, created_at::date), 'YYYY-MM-DD'),
        'last_seen_on', to_char(COALESCE(check_in_date, last_seen_at::date), 'YYYY-MM-DD'),
        'occurrences', occurrences,
        'corrected_at', NULL,
        'corrected_values', NULL))::text,
    rules = ',' || rule || ',';

-- A patient with several unresolved alerts: they are carried over into the leading one (the
-- most severe, then the earliest), which takes their findings; the others are resolved with a
-- note saying where they went (findings in the order their alerts were raised), so nothing is lost and the inbox shows one episode.
CREATE TEMPORARY TABLE episode_lead AS
SELECT a.id AS alert_id,
       (SELECT b.id FROM alerts b
         WHERE b.patient_id = a.patient_id AND b.status <> 'resolved'
         ORDER BY b.severity_rank DESC, b.created_at ASC, b.id ASC LIMIT 1) AS lead_id
  FROM alerts a
 WHERE a.status <> 'resolved';

UPDATE alerts SET
    findings = (SELECT json_agg(f.value ORDER BY m.created_at, m.id)::text
                  FROM episode_lead l
                  JOIN alerts m ON m.id = l.alert_id,
                       json_array_elements(m.findings::json) f
                 WHERE l.lead_id = alerts.id),
    rules = ',' || (SELECT string_agg(m.rule, ',' ORDER BY m.created_at, m.id)
                      FROM episode_lead l JOIN alerts m ON m.id = l.alert_id
                     WHERE l.lead_id = alerts.id) || ',',
    occurrences = (SELECT SUM(m.occurrences)
                     FROM episode_lead l JOIN alerts m ON m.id = l.alert_id
                    WHERE l.lead_id = alerts.id)
 WHERE id IN (SELECT lead_id FROM episode_lead WHERE lead_id <> alert_id);

UPDATE alerts SET
    status = 'resolved',
    outcome = 'other',
    note = 'Carried over into alert ' ||
           (SELECT lead_id FROM episode_lead WHERE alert_id = alerts.id) ||
           ' when alerts became one per episode.',
    resolved_at = now() AT TIME ZONE 'UTC',
    escalation_due_at = NULL,
    updated_at = now() AT TIME ZONE 'UTC'
 WHERE id IN (SELECT alert_id FROM episode_lead WHERE lead_id <> alert_id);

DROP TABLE episode_lead;

DROP INDEX alerts_one_unresolved_per_rule;
-- At most one unresolved alert per patient: the database enforces it even when two
-- processes evaluate the same patient at once.
CREATE UNIQUE INDEX alerts_one_unresolved_per_patient ON alerts (patient_id)
    WHERE status <> 'resolved';
CREATE INDEX alerts_updated ON alerts (organisation_id, updated_at);
