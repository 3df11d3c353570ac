//! Who may publish to a topic of `pubsub`: the `publishingScopes` of
//! `components/local/pubsub.yaml`, read from the file so that tests follow
//! the component, never a copy of it.

use crate::repo_root;

/// The app ids and the topics each may publish to (`app=t1,t2;app2=`).
fn publishing_scopes() -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let text = std::fs::read_to_string(repo_root().join("components/local/pubsub.yaml"))?;
    let mut lines = text.lines().map(str::trim);
    lines
        .by_ref()
        .find(|l| *l == "- name: publishingScopes")
        .ok_or_else(|| anyhow::anyhow!("pubsub.yaml has no publishingScopes"))?;
    let value = lines
        .find_map(|l| l.strip_prefix("value:"))
        .ok_or_else(|| anyhow::anyhow!("publishingScopes without a value"))?
        .trim()
        .trim_matches('"');
    Ok(value
        .split(';')
        .filter_map(|scope| scope.split_once('='))
        .map(|(app, topics)| {
            (
                app.trim().to_owned(),
                topics
                    .split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect(),
            )
        })
        .collect())
}

/// The first app that may publish `topic` on `pubsub` (only `pubsub` is
/// scoped by topic; the others by component scopes alone).
pub(crate) fn publisher_of(pubsub: &str, topic: &str) -> anyhow::Result<Option<String>> {
    if pubsub != "pubsub" {
        return Ok(None);
    }
    Ok(publishing_scopes()?
        .into_iter()
        .find(|(_, topics)| topics.iter().any(|t| t == topic))
        .map(|(app, _)| app))
}

/// The topics `app` may publish to on `pubsub`.
pub fn topics_published_by(app: &str) -> anyhow::Result<Vec<String>> {
    Ok(publishing_scopes()?
        .into_iter()
        .find(|(a, _)| a == app)
        .map(|(_, topics)| topics)
        .unwrap_or_default())
}
