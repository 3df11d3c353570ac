//! Message templates: files under `templates/<template>/<locale>/<part>`,
//! rendered with MiniJinja with strict undefined (a variable the data does
//! not have is an error, never an empty string).
//!
//! Parts: `subject.txt` (email subject and push title), `body.html` and
//! `body.txt` (email), `sms.txt`, `push.txt`. Everything is loaded and
//! parsed at start-up; a broken template stops the service from starting.
//! Rendering happens before a notification is stored, so a message that
//! cannot be rendered is never queued.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::Channel;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_templates.rs"));
}

const PARTS: [&str; 5] = [
    "subject.txt",
    "body.html",
    "body.txt",
    "sms.txt",
    "push.txt",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read templates: {0}")]
    Io(#[from] std::io::Error),
    #[error("template {name}: {error}")]
    Syntax {
        name: String,
        error: minijinja::Error,
    },
    #[error("templates are inconsistent: {0}")]
    Layout(String),
}

/// Why a message could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("unknown template {0:?}")]
    UnknownTemplate(String),
    #[error("template {template:?} has no {channel} variant")]
    NoChannel { template: String, channel: Channel },
    #[error("template data must be a JSON object")]
    DataNotObject,
    #[error("template {template:?} failed to render: {reason}")]
    Failed { template: String, reason: String },
}

/// What is sent, by channel: email uses subject, html, text; SMS body;
/// push subject (title) and body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// template → locale → parts present.
    catalog: BTreeMap<String, BTreeMap<String, BTreeSet<&'static str>>>,
    /// `template/locale/part` → the variables it reads from the data,
    /// found once at load instead of at every render.
    variables: HashMap<String, HashSet<String>>,
    default_locale: String,
}

fn parts_for(channel: Channel) -> &'static [&'static str] {
    match channel {
        Channel::Email => &["subject.txt", "body.html", "body.txt"],
        Channel::Sms => &["sms.txt"],
        Channel::Push => &["subject.txt", "push.txt"],
    }
}

impl Templates {
    /// The templates embedded at build time (`build.rs`, from `templates/`).
    pub fn embedded(default_locale: &str) -> Result<Self, TemplateError> {
        Self::from_files(
            embedded::EMBEDDED
                .iter()
                .map(|(path, source)| ((*path).to_owned(), (*source).to_owned())),
            default_locale,
        )
    }

    /// Loads and checks every template under `dir`.
    pub fn load(dir: &Path, default_locale: &str) -> Result<Self, TemplateError> {
        let mut files = Vec::new();
        for template in sorted_dirs(dir)? {
            for locale in sorted_dirs(&dir.join(&template))? {
                let folder = dir.join(&template).join(&locale);
                for entry in std::fs::read_dir(&folder)? {
                    let entry = entry?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    let source = std::fs::read_to_string(entry.path())?;
                    files.push((format!("{template}/{locale}/{file}"), source));
                }
            }
        }
        Self::from_files(files, default_locale)
    }

    /// Parses `(template/locale/part, source)` files and checks the set.
    fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
        default_locale: &str,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut catalog: BTreeMap<String, BTreeMap<String, BTreeSet<&'static str>>> =
            BTreeMap::new();
        let mut variables = HashMap::new();
        for (name, source) in files {
            let mut segments = name.split('/');
            let (Some(template), Some(locale), Some(file), None) = (
                segments.next(),
                segments.next(),
                segments.next(),
                segments.next(),
            ) else {
                return Err(TemplateError::Layout(format!(
                    "{name} is not <template>/<locale>/<part>"
                )));
            };
            let Some(part) = PARTS.iter().find(|p| **p == file) else {
                return Err(TemplateError::Layout(format!(
                    "{name}: {file} is not one of {PARTS:?}"
                )));
            };
            let (template, locale) = (template.to_owned(), locale.to_owned());
            env.add_template_owned(name.clone(), source)
                .map_err(|error| TemplateError::Syntax {
                    name: name.clone(),
                    error,
                })?;
            let read = env
                .get_template(&name)
                .map_err(|error| TemplateError::Syntax {
                    name: name.clone(),
                    error,
                })?
                .undeclared_variables(false);
            variables.insert(name, read);
            catalog
                .entry(template)
                .or_default()
                .entry(locale)
                .or_default()
                .insert(*part);
        }
        let templates = Self {
            env,
            catalog,
            variables,
            default_locale: default_locale.to_owned(),
        };
        templates.check()?;
        Ok(templates)
    }

    /// Every template has the default locale, every locale the same parts,
    /// and the parts form complete channels.
    fn check(&self) -> Result<(), TemplateError> {
        if self.catalog.is_empty() {
            return Err(TemplateError::Layout("no templates found".into()));
        }
        for (template, locales) in &self.catalog {
            let Some(reference) = locales.get(&self.default_locale) else {
                return Err(TemplateError::Layout(format!(
                    "{template} has no {} variant",
                    self.default_locale
                )));
            };
            for (locale, parts) in locales {
                if parts != reference {
                    return Err(TemplateError::Layout(format!(
                        "{template}/{locale} has parts {parts:?}, {template}/{} has {reference:?}",
                        self.default_locale
                    )));
                }
            }
            let complete = Channel::ALL
                .iter()
                .any(|c| parts_for(*c).iter().all(|p| reference.contains(p)));
            if !complete {
                return Err(TemplateError::Layout(format!(
                    "{template} has no complete channel"
                )));
            }
            let email = parts_for(Channel::Email);
            let some_email = ["body.html", "body.txt"]
                .iter()
                .any(|p| reference.contains(p));
            if some_email && !email.iter().all(|p| reference.contains(p)) {
                return Err(TemplateError::Layout(format!(
                    "{template}: email needs subject.txt, body.html and body.txt"
                )));
            }
        }
        Ok(())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.catalog.keys().map(String::as_str)
    }

    pub fn exists(&self, template: &str) -> bool {
        self.catalog.contains_key(template)
    }

    /// Whether `template` can be sent on `channel`.
    pub fn supports(&self, template: &str, channel: Channel) -> bool {
        self.catalog
            .get(template)
            .and_then(|l| l.get(&self.default_locale))
            .is_some_and(|parts| parts_for(channel).iter().all(|p| parts.contains(p)))
    }

    /// The locale variant used for `requested`: exact, then its language,
    /// then the default.
    pub fn resolve_locale(&self, template: &str, requested: Option<&str>) -> String {
        let Some(locales) = self.catalog.get(template) else {
            return self.default_locale.clone();
        };
        if let Some(requested) = requested {
            if locales.contains_key(requested) {
                return requested.to_owned();
            }
            let language = requested.split('-').next().unwrap_or(requested);
            if locales.contains_key(language) {
                return language.to_owned();
            }
        }
        self.default_locale.clone()
    }

    /// Renders every part `channel` needs. `notification_id` is available
    /// to templates as `notification_id`.
    pub fn render(
        &self,
        template: &str,
        locale: &str,
        channel: Channel,
        data: &Value,
        notification_id: Uuid,
    ) -> Result<Content, RenderError> {
        if !self.exists(template) {
            return Err(RenderError::UnknownTemplate(template.to_owned()));
        }
        if !self.supports(template, channel) {
            return Err(RenderError::NoChannel {
                template: template.to_owned(),
                channel,
            });
        }
        let Value::Object(fields) = data else {
            return Err(RenderError::DataNotObject);
        };
        let mut context = fields.clone();
        context.insert(
            "notification_id".into(),
            Value::String(notification_id.to_string()),
        );
        let context = minijinja::Value::from_serialize(&context);
        let render = |part: &str| -> Result<String, RenderError> {
            let name = format!("{template}/{locale}/{part}");
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&context))
                .map_err(|e| RenderError::Failed {
                    template: name,
                    reason: e.to_string(),
                })
        };
        let missing: BTreeSet<&str> = parts_for(channel)
            .iter()
            .filter_map(|part| self.variables.get(&format!("{template}/{locale}/{part}")))
            .flatten()
            .map(String::as_str)
            .filter(|v| *v != "notification_id" && !fields.contains_key(*v))
            .collect();
        if !missing.is_empty() {
            return Err(RenderError::Failed {
                template: format!("{template}/{locale}"),
                reason: format!(
                    "missing variables: {}",
                    missing.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let one_line = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(match channel {
            Channel::Email => Content {
                subject: Some(one_line(render("subject.txt")?)),
                html: Some(render("body.html")?),
                text: Some(render("body.txt")?),
                body: None,
            },
            Channel::Sms => Content {
                body: Some(render("sms.txt")?.trim().to_owned()),
                ..Content::default()
            },
            Channel::Push => Content {
                subject: Some(one_line(render("subject.txt")?)),
                body: Some(render("push.txt")?.trim().to_owned()),
                ..Content::default()
            },
        })
    }
}

fn sorted_dirs(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> Templates {
        Templates::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
            "en",
        )
        .unwrap()
    }

    #[test]
    fn the_embedded_templates_are_the_shipped_ones() {
        let embedded = Templates::embedded("en").unwrap();
        let shipped = shipped();
        assert_eq!(embedded.catalog, shipped.catalog);
        assert!(embedded.names().count() >= 6);
    }

    #[test]
    fn the_shipped_templates_load() {
        let t = shipped();
        assert!(t.exists("payment_receipt"));
        assert!(t.supports("statement_ready", Channel::Email));
        assert!(!t.supports("statement_ready", Channel::Sms));
    }

    #[test]
    fn a_missing_variable_fails_instead_of_rendering_empty() {
        let t = shipped();
        let err = t
            .render(
                "payment_receipt",
                "en",
                Channel::Email,
                &json!({"amount": "1.00 EUR"}),
                Uuid::nil(),
            )
            .unwrap_err();
        assert!(matches!(err, RenderError::Failed { .. }), "{err:?}");
    }

    #[test]
    fn locales_fall_back_to_the_language_then_the_default() {
        let t = shipped();
        assert_eq!(t.resolve_locale("payment_receipt", Some("de-AT")), "de");
        assert_eq!(t.resolve_locale("payment_receipt", Some("fr")), "en");
        assert_eq!(t.resolve_locale("payment_receipt", None), "en");
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = shipped();
        let c = t
            .render(
                "promotion",
                "en",
                Channel::Email,
                &json!({"headline": "A & B", "offer": "<b>50%</b>"}),
                Uuid::nil(),
            )
            .unwrap();
        let html = c.html.unwrap();
        assert!(
            html.contains("&lt;b&gt;50%") && !html.contains("<b>"),
            "{html}"
        );
        assert!(c.text.unwrap().contains("<b>50%</b>"));
    }

    #[test]
    fn a_broken_template_or_a_missing_part_stops_loading() {
        let dir = tempfile::tempdir().unwrap();
        let en = dir.path().join("t/en");
        std::fs::create_dir_all(&en).unwrap();
        std::fs::write(en.join("sms.txt"), "Hello {{ name").unwrap();
        assert!(matches!(
            Templates::load(dir.path(), "en"),
            Err(TemplateError::Syntax { .. })
        ));
        std::fs::write(en.join("sms.txt"), "Hello {{ name }}").unwrap();
        let de = dir.path().join("t/de");
        std::fs::create_dir_all(&de).unwrap();
        std::fs::write(de.join("push.txt"), "Hallo").unwrap();
        assert!(matches!(
            Templates::load(dir.path(), "en"),
            Err(TemplateError::Layout(_))
        ));
    }
}
