//! Crisis resources by country: where a patient can turn right now, in the country they are in.
//!
//! A patient's country is the one on their profile (`country`, ISO 3166-1 alpha-2), else the
//! country of their IANA timezone in the tz database's zone table, else none. Their resources
//! are the organisation's list for that country when it keeps one (it replaces everything
//! else); otherwise the organisation's default list (its own lines, first) followed by the
//! built-in list for that country; and when neither exists, the built-in fallback (no
//! country-specific number at all). A clinic that set its own lines before per-country lists
//! existed keeps seeing them first, and its patients abroad still get their national lines.
//!
//! Every number in the built-in lists was checked against a public source, cited beside it.
//! A crisis line that is wrong or foreign in a crisis is worse than none, so a country without
//! a checked list gets the fallback, never another country's numbers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Somewhere to turn in a crisis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrisisResource {
    /// Name, e.g. "988 Suicide & Crisis Lifeline" (1–100 characters).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// How to reach it, e.g. "Call or text 988" (1–200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub contact: String,
    /// What it is for (1–500 characters).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub description: String,
}

fn r(name: &str, contact: &str, description: &str) -> CrisisResource {
    CrisisResource {
        name: name.into(),
        contact: contact.into(),
        description: description.into(),
    }
}

const NALOXONE: &str = "Keep naloxone (Narcan) with you and never use alone: after time without using, your tolerance is lower and the same amount can cause an overdose.";

/// The countries with a built-in, source-checked list.
pub const BUILT_IN_COUNTRIES: [&str; 7] = ["AU", "CA", "DE", "GB", "IE", "NZ", "US"];

/// The built-in list for a country, when there is one.
pub fn built_in(country: &str) -> Option<Vec<CrisisResource>> {
    Some(match country {
        "US" => vec![
            // https://health.wyo.gov/publichealth/prevention/wivpp/suicide-prevention/988-suicide-crisis-lifeline
            // ("call or text 988 ... If you or someone you know is in immediate danger ... call 911")
            r(
                "988 Suicide & Crisis Lifeline",
                "Call or text 988",
                "Free, confidential support 24/7 for anyone in emotional distress, a suicidal crisis or a substance use crisis.",
            ),
            // Same source as above.
            r(
                "Emergency services",
                "Call 911",
                "If you or someone near you is in immediate danger or may be overdosing.",
            ),
            // https://streetconnections.ca/overdose-prevention ("Call Never Use Alone (US only):
            // 1-800-484-3731"); https://neverusealone.com/helpie_faq/how-does-this-work/
            r(
                "Naloxone and never use alone",
                "Never Use Alone hotline: 800-484-3731",
                "Keep naloxone (Narcan) with you and never use alone: the hotline stays on the line and sends help if you stop responding.",
            ),
        ],
        "CA" => vec![
            // https://www.maplenow.ca/site/988-suicide-crisis-helpline ("Canada's three-digit,
            // toll-free number ... supports both phone calls and text messages")
            r(
                "9-8-8: Suicide Crisis Helpline",
                "Call or text 988",
                "Free support 24/7 in English and French for anyone thinking about suicide or worried about someone.",
            ),
            // https://streetconnections.ca/overdose-prevention ("If you witness or experience an
            // overdose call 911")
            r(
                "Emergency services",
                "Call 911",
                "If you or someone near you is in immediate danger or may be overdosing.",
            ),
            // https://streetconnections.ca/overdose-prevention ("Call (Canada only):
            // 1-888-688-NORS(6677)")
            r(
                "National Overdose Response Service",
                "Call 1-888-688-6677",
                "If you are going to use alone: a peer stays on the line and calls for help if you stop responding. Keep naloxone with you.",
            ),
        ],
        "GB" => vec![
            // https://www.samaritans.org/how-we-can-help/contact-samaritan/ ("free to call from
            // both landlines and mobiles ... 116 123")
            r(
                "Samaritans",
                "Call 116 123 (free, 24/7)",
                "Someone to talk to, day or night, whatever you are going through.",
            ),
            // https://www.londonambulance.nhs.uk/calling-us/calling-999/ ("Always call 999 if
            // someone is seriously ill or injured, and their life is at risk")
            r(
                "Emergency services",
                "Call 999",
                "If you or someone near you is in immediate danger or may be overdosing.",
            ),
            // https://wmas.nhs.uk/999-or-111/ ("NHS 111 is a free number ... 24 hours a day")
            r(
                "NHS 111",
                "Call 111",
                "Urgent medical help or advice when it is not life-threatening.",
            ),
            r("Naloxone and never use alone", "Ask your drug service for a naloxone kit", NALOXONE),
        ],
        "IE" => vec![
            // http://www.newstalk.com/reader/47.301/69999/0/ ("116 123 ... anyone on the island of
            // Ireland can call at no cost")
            r(
                "Samaritans Ireland",
                "Call 116 123 (free, 24/7)",
                "Someone to talk to, day or night, whatever you are going through.",
            ),
            // https://www2.hse.ie/emergencies/when-to-call-112-or-999/ ("There are two emergency
            // numbers in Ireland — 112 and 999. Both are free of charge")
            r(
                "Emergency services",
                "Call 112 or 999",
                "If you or someone near you is in immediate danger or may be overdosing.",
            ),
            r("Naloxone and never use alone", "Ask your drug service for naloxone", NALOXONE),
        ],
        "AU" => vec![
            // https://en.wikipedia.org/wiki/Lifeline_(crisis_support_service) ("accessed by
            // calling 13 11 14"); text line: https://www.theleader.com.au/story/7611333/lifeline-crisis-text-service-goes-247-to-help-more-in-need/
            // ("text message to 0477 13 11 14")
            r(
                "Lifeline",
                "Call 13 11 14 or text 0477 13 11 14",
                "Crisis support and suicide prevention 24/7.",
            ),
            // https://lifelineh2h.org.au/get-help/telephone-crisis-support/faqs/ ("If you are in
            // immediate danger call 000")
            r(
                "Emergency services",
                "Call 000",
                "If you or someone near you is in immediate danger or may be overdosing.",
            ),
            r("Naloxone and never use alone", "Ask a pharmacy for naloxone", NALOXONE),
        ],
        "NZ" => vec![
            // https://m.scoop.co.nz/stories/PA1706/S00527/single-phone-number-to-access-support-services.htm
            // ("Need to talk? 1737 is free to call or text ... 24 hours a day, 7 days a week")
            r(
                "Need to talk? 1737",
                "Call or text 1737 (free, 24/7)",
                "Talk with a trained counsellor, including about alcohol and drugs.",
            ),
            // http://www.voxy.co.nz/national/5/361737 ("Or call 111 in an emergency")
            r(
                "Emergency services",
                "Call 111",
                "If you or someone near you is in immediate danger or may be overdosing.",
            ),
            r("Naloxone and never use alone", "Ask a pharmacy or needle exchange for naloxone", NALOXONE),
        ],
        "DE" => vec![
            // https://www.domradio.de/artikel/telefonseelsorge-jetzt-unter-oekumenischem-dachverband
            // ("unter den Nummern 0800/1110111 und 0800/1110222 rund um die Uhr kostenfrei")
            r(
                "TelefonSeelsorge",
                "Call 0800 111 0 111 or 0800 111 0 222 (free, 24/7)",
                "Anonymous support, day or night, in a crisis or with thoughts of suicide.",
            ),
            // https://www.mainz.de/en/microsite/feuerwehr/buergerinformation/kontakt/Notfallnummern
            // ("fire department and emergency medical services: 112 ... Police emergency
            // number: 110")
            r(
                "Emergency services (Notruf)",
                "Call 112 (ambulance) or 110 (police)",
                "If you or someone near you is in immediate danger or may be overdosing.",
            ),
            r("Naloxone and never use alone", "Ask your doctor or drug service for naloxone", NALOXONE),
        ],
        _ => return None,
    })
}

/// What a patient sees when neither their country nor their organisation has a list: no
/// country-specific number, since a foreign one could cost minutes in an emergency.
pub fn fallback() -> Vec<CrisisResource> {
    vec![
        r(
            "Emergency services",
            "Call your local emergency number",
            "If you or someone near you is in immediate danger or may be overdosing.",
        ),
        // https://findahelpline.com/AU (free, confidential helplines listed by country)
        r(
            "Find a Helpline",
            "findahelpline.com",
            "Free, confidential crisis lines in your country, by phone, text or chat.",
        ),
        r(
            "Naloxone and never use alone",
            "Keep naloxone with you",
            NALOXONE,
        ),
    ]
}

fn iso_codes() -> &'static HashSet<&'static str> {
    static CODES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    CODES.get_or_init(|| {
        include_str!("data/iso3166_codes.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(str::split_whitespace)
            .collect()
    })
}

fn zone_countries() -> &'static HashMap<&'static str, &'static str> {
    static ZONES: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    ZONES.get_or_init(|| {
        include_str!("data/zone_countries.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .collect()
    })
}

/// An ISO 3166-1 alpha-2 code, upper-cased (`de` → `DE`), when it is an assigned one.
pub fn parse_country(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    iso_codes().contains(code.as_str()).then_some(code)
}

/// The country of an IANA timezone, from the tz database's zone table (`None` for UTC and
/// zones with no country).
pub fn country_of_timezone(timezone: &str) -> Option<&'static str> {
    zone_countries().get(timezone).copied()
}

/// The country whose crisis lines a patient is shown: the one on their profile, else their
/// timezone's.
pub fn patient_country(profile: Option<&str>, timezone: &str) -> Option<String> {
    profile
        .and_then(parse_country)
        .or_else(|| country_of_timezone(timezone).map(str::to_owned))
}

/// The organisation's own lists: a default and any per country.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrganisationLists {
    /// For patients whose country has neither an organisation nor a built-in list.
    pub items: Vec<CrisisResource>,
    /// By ISO 3166-1 alpha-2 country.
    pub by_country: BTreeMap<String, Vec<CrisisResource>>,
}

impl OrganisationLists {
    /// Reads the stored form: this object, or the bare list stored before per-country lists.
    pub fn from_stored(stored: Option<&str>) -> Self {
        let Some(s) = stored else {
            return Self::default();
        };
        serde_json::from_str::<Self>(s)
            .or_else(|_| serde_json::from_str::<Vec<CrisisResource>>(s).map(Self::from_items))
            .unwrap_or_default()
    }

    fn from_items(items: Vec<CrisisResource>) -> Self {
        Self {
            items,
            by_country: BTreeMap::new(),
        }
    }

    /// Nothing of the organisation's own.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.by_country.values().all(Vec::is_empty)
    }

    /// The resources for a patient in `country` (see the module documentation for the order).
    pub fn resolve(&self, country: Option<&str>) -> Vec<CrisisResource> {
        if let Some(list) = country
            .and_then(|c| self.by_country.get(c))
            .filter(|l| !l.is_empty())
        {
            return list.clone();
        }
        let national = country.and_then(built_in);
        if self.items.is_empty() {
            return national.unwrap_or_else(fallback);
        }
        let mut out = self.items.clone();
        out.extend(national.unwrap_or_default());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contacts(list: &[CrisisResource]) -> String {
        list.iter()
            .map(|r| r.contact.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn timezones_give_their_country() {
        for (tz, cc) in [
            ("Europe/Berlin", "DE"),
            ("America/Toronto", "CA"),
            ("Europe/London", "GB"),
            ("Australia/Sydney", "AU"),
            ("Pacific/Auckland", "NZ"),
            ("Europe/Dublin", "IE"),
            ("America/New_York", "US"),
            ("US/Eastern", "US"),
            ("Asia/Calcutta", "IN"),
            ("Atlantic/Jan_Mayen", "NO"),
        ] {
            assert_eq!(country_of_timezone(tz), Some(cc), "{tz}");
        }
        assert_eq!(country_of_timezone("UTC"), None);
        assert_eq!(country_of_timezone("Etc/GMT+5"), None);
    }

    #[test]
    fn country_codes_are_checked() {
        assert_eq!(parse_country("de").as_deref(), Some("DE"));
        assert_eq!(parse_country(" GB ").as_deref(), Some("GB"));
        assert_eq!(parse_country("UK"), None, "not an ISO code");
        assert_eq!(parse_country("DEU"), None);
        assert_eq!(parse_country(""), None);
    }

    #[test]
    fn every_built_in_country_has_an_emergency_number_and_a_crisis_line() {
        for c in BUILT_IN_COUNTRIES {
            let list = built_in(c).unwrap();
            assert!(list.len() >= 2, "{c}");
            assert!(list.iter().all(|r| !r.contact.is_empty()));
        }
        assert_eq!(built_in("FR"), None);
    }

    #[test]
    fn only_north_america_is_told_988_and_911() {
        for c in BUILT_IN_COUNTRIES {
            let all = contacts(&built_in(c).unwrap());
            let na = c == "US" || c == "CA";
            assert_eq!(all.contains("988"), na, "{c}: {all}");
            assert_eq!(all.contains("911"), na, "{c}: {all}");
        }
        let f = contacts(&fallback());
        assert!(!f.contains("988") && !f.contains("911"), "{f}");
        assert!(contacts(&built_in("DE").unwrap()).contains("0800 111 0 111"));
        assert!(contacts(&built_in("US").unwrap()).contains("800-484-3731"));
    }

    #[test]
    fn the_profile_country_wins_over_the_timezone() {
        assert_eq!(
            patient_country(Some("IE"), "Europe/London").as_deref(),
            Some("IE")
        );
        assert_eq!(
            patient_country(None, "Europe/Berlin").as_deref(),
            Some("DE")
        );
        assert_eq!(patient_country(None, "UTC"), None);
    }

    #[test]
    fn resolution_order() {
        let own = |name: &str| vec![r(name, "Call 555-0100", "ours")];
        let mut org = OrganisationLists::default();
        assert_eq!(org.resolve(Some("DE")), built_in("DE").unwrap());
        assert_eq!(org.resolve(Some("FR")), fallback());
        assert_eq!(org.resolve(None), fallback());
        org.items = own("default");
        let mut ours_then_german = own("default");
        ours_then_german.extend(built_in("DE").unwrap());
        assert_eq!(
            org.resolve(Some("DE")),
            ours_then_german,
            "the clinic's own lines first, then the national ones"
        );
        assert_eq!(org.resolve(Some("FR")), own("default"));
        assert_eq!(org.resolve(None), own("default"));
        org.by_country.insert("DE".into(), own("berlin"));
        assert_eq!(org.resolve(Some("DE")), own("berlin"));
        let mut ours_then_us = own("default");
        ours_then_us.extend(built_in("US").unwrap());
        assert_eq!(org.resolve(Some("US")), ours_then_us);
    }

    #[test]
    fn the_stored_form_before_per_country_lists_still_reads() {
        let legacy = r#"[{"name": "Harbour", "contact": "Call 555-0100", "description": "ours"}]"#;
        let o = OrganisationLists::from_stored(Some(legacy));
        assert_eq!(o.items.len(), 1);
        assert!(o.by_country.is_empty());
        let new = serde_json::to_string(&o).unwrap();
        assert_eq!(OrganisationLists::from_stored(Some(&new)), o);
        assert!(OrganisationLists::from_stored(None).is_empty());
    }
}
