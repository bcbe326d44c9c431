//! The mlctl spec (`apiVersion: mlctl.dev/v1alpha1`): Kubernetes-style documents of five
//! kinds, parsed from YAML text into typed objects with located diagnostics.
//!
//! Stages: source text → [`parse`] → [`RawSpec`] (typed, not yet checked across fields and
//! documents) → [`crate::validate::validate`] → [`crate::validate::ValidatedSpec`].

pub mod common;
pub mod data;
pub mod job;
pub mod pipeline;
pub mod platform;
pub mod serving;

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::from_node;
use crate::diag::{Diagnostic, did_you_mean};
use crate::path::FieldPath;
use crate::yaml::{Node, Value, parse_documents};

pub use common::{Resources, Templated};
pub use data::DataJobSpec;
pub use job::JobSpec;
pub use pipeline::PipelineSpec;
pub use platform::PlatformSpec;
pub use serving::InferenceServiceSpec;

/// The `apiVersion` of every mlctl document.
pub const API_VERSION: &str = "mlctl.dev/v1alpha1";

/// The kinds of mlctl documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    /// A training job (single process or distributed).
    TrainingJob,
    /// A pipeline of steps.
    Pipeline,
    /// A model server.
    InferenceService,
    /// A Spark or Dask job.
    DataJob,
    /// Node pools, namespaces, quotas, security and network rules.
    Platform,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::TrainingJob,
        Kind::Pipeline,
        Kind::InferenceService,
        Kind::DataJob,
        Kind::Platform,
    ];

    /// The kind as documents write it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::TrainingJob => "TrainingJob",
            Kind::Pipeline => "Pipeline",
            Kind::InferenceService => "InferenceService",
            Kind::DataJob => "DataJob",
            Kind::Platform => "Platform",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Object metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Name (a DNS-1123 label), unique per kind and namespace.
    pub name: String,
    /// Namespace (default `default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels, copied to everything rendered from the object.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Annotations, copied to the rendered top-level objects.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
}

/// The spec of an object, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// A training job.
    TrainingJob(JobSpec),
    /// A pipeline.
    Pipeline(PipelineSpec),
    /// A model server.
    InferenceService(InferenceServiceSpec),
    /// A data job.
    DataJob(DataJobSpec),
    /// A platform.
    Platform(PlatformSpec),
}

impl Spec {
    /// The kind of this spec.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::TrainingJob(_) => Kind::TrainingJob,
            Spec::Pipeline(_) => Kind::Pipeline,
            Spec::InferenceService(_) => Kind::InferenceService,
            Spec::DataJob(_) => Kind::DataJob,
            Spec::Platform(_) => Kind::Platform,
        }
    }
}

/// Where an object comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The file, as the user named it (`-` for standard input).
    pub file: String,
    /// Zero-based index of the document in the file (empty documents not counted).
    pub document: usize,
    /// The document's located tree, to place diagnostics found later.
    pub tree: Node,
}

/// One mlctl object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Metadata.
    pub metadata: Metadata,
    /// The spec.
    pub spec: Spec,
    /// Where it was written.
    pub origin: Origin,
}

impl Object {
    /// The kind.
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The namespace (`default` when not given).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// `Kind/name`, as messages name objects.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }

    /// A diagnostic about `path` in this object, placed in its file.
    pub fn place(&self, mut diag: Diagnostic) -> Diagnostic {
        diag.file.clone_from(&self.origin.file);
        diag.pos = self.origin.tree.locate(&diag.path);
        if diag.object.is_none() {
            diag.object = Some(self.id());
        }
        diag
    }
}

/// A source text to parse.
#[derive(Debug, Clone, Copy)]
pub struct SourceText<'a> {
    /// How messages name it.
    pub name: &'a str,
    /// The YAML text.
    pub text: &'a str,
}

/// Parsed objects, typed but not yet validated across fields and documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSpec {
    /// The objects, in file and document order.
    pub objects: Vec<Object>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Envelope<S> {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: Metadata,
    spec: S,
}

/// Parses sources into objects. Every document that cannot be parsed is reported (the first
/// problem of each); the others are returned.
pub fn parse(sources: &[SourceText<'_>]) -> (RawSpec, Vec<Diagnostic>) {
    let mut raw = RawSpec::default();
    let mut diags = Vec::new();
    for source in sources {
        let docs = match parse_documents(source.text) {
            Ok(docs) => docs,
            Err(e) => {
                diags.push(
                    Diagnostic::error(e.code, FieldPath::root(), e.message).at(source.name, e.pos),
                );
                continue;
            }
        };
        for (index, tree) in docs.into_iter().enumerate() {
            match parse_object(&tree) {
                Ok((metadata, spec)) => raw.objects.push(Object {
                    metadata,
                    spec,
                    origin: Origin {
                        file: source.name.to_string(),
                        document: index,
                        tree,
                    },
                }),
                Err(mut diag) => {
                    diag.file = source.name.to_string();
                    if diag.object.is_none() {
                        diag.object = object_id(&tree);
                    }
                    diags.push(*diag);
                }
            }
        }
    }
    (raw, diags)
}

fn object_id(tree: &Node) -> Option<String> {
    let kind = tree.get("kind")?.as_str()?;
    let name = tree.get("metadata")?.get("name")?.as_str()?;
    Some(format!("{kind}/{name}"))
}

fn parse_object(tree: &Node) -> Result<(Metadata, Spec), Box<Diagnostic>> {
    let root = FieldPath::root();
    let Value::Map(_) = &tree.value else {
        let mut d = Diagnostic::error(
            "not-an-object",
            root,
            format!(
                "expected a mapping with apiVersion, kind, metadata and spec, found {}",
                tree.type_name()
            ),
        );
        d.pos = tree.pos;
        return Err(Box::new(d));
    };
    let field = |name: &str| -> Result<&str, Box<Diagnostic>> {
        match tree.get(name) {
            Some(node) => node.as_str().ok_or_else(|| {
                let mut d = Diagnostic::error(
                    "invalid-type",
                    FieldPath::root().key(name),
                    format!("expected a string, found {}", node.type_name()),
                );
                d.pos = node.pos;
                Box::new(d)
            }),
            None => {
                let mut d = Diagnostic::error(
                    "missing-field",
                    FieldPath::root(),
                    format!("missing required field `{name}`"),
                )
                .with_hint(format!(
                    "mlctl documents start with `apiVersion: {API_VERSION}` and a `kind`"
                ));
                d.pos = tree.pos;
                Err(Box::new(d))
            }
        }
    };
    let api_version = field("apiVersion")?;
    if api_version != API_VERSION {
        let mut d = Diagnostic::error(
            "unknown-api-version",
            FieldPath::root().key("apiVersion"),
            format!("unknown apiVersion `{api_version}`, expected `{API_VERSION}`"),
        );
        d.pos = tree.locate(&d.path);
        d.hint = Some(if api_version.starts_with("mlctl.dev/") {
            format!("this mlctl reads `{API_VERSION}`")
        } else {
            "this looks like a Kubernetes manifest: `mlctl check` checks those".to_string()
        });
        return Err(Box::new(d));
    }
    let kind_text = field("kind")?;
    let Some(kind) = Kind::parse(kind_text) else {
        let mut d = Diagnostic::error(
            "unknown-kind",
            FieldPath::root().key("kind"),
            format!("unknown kind `{kind_text}`"),
        );
        d.pos = tree.locate(&d.path);
        let names = Kind::ALL.map(|k| k.as_str());
        d.hint = Some(match did_you_mean(kind_text, names) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("mlctl kinds are {}", names.join(", ")),
        });
        return Err(Box::new(d));
    };
    fn typed<S: serde::de::DeserializeOwned>(
        tree: &Node,
        wrap: fn(S) -> Spec,
    ) -> Result<(Metadata, Spec), Box<Diagnostic>> {
        let env: Envelope<S> =
            from_node(tree, FieldPath::root()).map_err(|e| Box::new(e.to_diagnostic()))?;
        Ok((env.metadata, wrap(env.spec)))
    }
    match kind {
        Kind::TrainingJob => typed(tree, Spec::TrainingJob),
        Kind::Pipeline => typed(tree, Spec::Pipeline),
        Kind::InferenceService => typed(tree, Spec::InferenceService),
        Kind::DataJob => typed(tree, Spec::DataJob),
        Kind::Platform => typed(tree, Spec::Platform),
    }
}

/// The JSON Schema of mlctl documents (for editors: `# yaml-language-server: $schema=...`).
pub fn json_schema() -> serde_json::Value {
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Doc<K: JsonSchema, S: JsonSchema> {
        api_version: ApiVersion,
        kind: K,
        metadata: Metadata,
        spec: S,
    }
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    enum ApiVersion {
        #[serde(rename = "mlctl.dev/v1alpha1")]
        V1alpha1,
    }
    macro_rules! kind_tag {
        ($name:ident) => {
            #[derive(JsonSchema)]
            #[allow(dead_code)]
            enum $name {
                $name,
            }
        };
    }
    kind_tag!(TrainingJob);
    kind_tag!(Pipeline);
    kind_tag!(InferenceService);
    kind_tag!(DataJob);
    kind_tag!(Platform);
    #[derive(JsonSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Document {
        TrainingJob(Doc<TrainingJob, JobSpec>),
        Pipeline(Doc<Pipeline, PipelineSpec>),
        InferenceService(Doc<InferenceService, InferenceServiceSpec>),
        DataJob(Doc<DataJob, DataJobSpec>),
        Platform(Doc<Platform, PlatformSpec>),
    }
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Document>();
    schema.insert(
        "$id".into(),
        "https://mlctl.dev/schemas/v1alpha1.json".into(),
    );
    schema.insert("title".into(), "mlctl spec (mlctl.dev/v1alpha1)".into());
    schema.to_value()
}
