//! Built-in Kubernetes API versions that are no longer served, with what replaces them.
//!
//! The embedded schemas only say what *is* served; a manifest written for an older cluster
//! (the seed's `policy/v1beta1` PodSecurityPolicy, `extensions/v1beta1` Deployments) deserves
//! more than "unknown kind": it gets the release that removed it and the migration. Source:
//! the Kubernetes deprecated API migration guide.

/// One removed API: `apiVersion`, kind (`*` for every kind of that version), the release
/// that stopped serving it, and what to use instead.
struct Removed {
    api_version: &'static str,
    kind: &'static str,
    removed_in: &'static str,
    replacement: &'static str,
}

const REMOVED: &[Removed] = &[
    Removed {
        api_version: "policy/v1beta1",
        kind: "PodSecurityPolicy",
        removed_in: "1.25",
        replacement: "PodSecurityPolicy has no replacement object: label the Namespace with Pod Security Admission levels (`pod-security.kubernetes.io/enforce: restricted` or `baseline`), and use a policy engine (ValidatingAdmissionPolicy, Kyverno, Gatekeeper) for rules PSA does not cover",
    },
    Removed {
        api_version: "extensions/v1beta1",
        kind: "PodSecurityPolicy",
        removed_in: "1.16",
        replacement: "PodSecurityPolicy has no replacement object: label the Namespace with Pod Security Admission levels (`pod-security.kubernetes.io/enforce: restricted` or `baseline`)",
    },
    Removed {
        api_version: "extensions/v1beta1",
        kind: "Ingress",
        removed_in: "1.22",
        replacement: "use networking.k8s.io/v1 Ingress (`spec.rules[].http.paths[].backend.service.{name,port}` and a required `pathType`)",
    },
    Removed {
        api_version: "networking.k8s.io/v1beta1",
        kind: "Ingress",
        removed_in: "1.22",
        replacement: "use networking.k8s.io/v1 Ingress (`backend.service.{name,port}`, required `pathType`)",
    },
    Removed {
        api_version: "networking.k8s.io/v1beta1",
        kind: "IngressClass",
        removed_in: "1.22",
        replacement: "use networking.k8s.io/v1 IngressClass",
    },
    Removed {
        api_version: "extensions/v1beta1",
        kind: "NetworkPolicy",
        removed_in: "1.16",
        replacement: "use networking.k8s.io/v1 NetworkPolicy",
    },
    Removed {
        api_version: "extensions/v1beta1",
        kind: "*",
        removed_in: "1.16",
        replacement: "use apps/v1 (Deployment, DaemonSet, ReplicaSet; `spec.selector` is required and immutable)",
    },
    Removed {
        api_version: "apps/v1beta1",
        kind: "*",
        removed_in: "1.16",
        replacement: "use apps/v1 (`spec.selector` is required and must match the template labels)",
    },
    Removed {
        api_version: "apps/v1beta2",
        kind: "*",
        removed_in: "1.16",
        replacement: "use apps/v1 (`spec.selector` is required and must match the template labels)",
    },
    Removed {
        api_version: "batch/v1beta1",
        kind: "CronJob",
        removed_in: "1.25",
        replacement: "use batch/v1 CronJob (same fields)",
    },
    Removed {
        api_version: "batch/v2alpha1",
        kind: "CronJob",
        removed_in: "1.21",
        replacement: "use batch/v1 CronJob",
    },
    Removed {
        api_version: "autoscaling/v2beta1",
        kind: "HorizontalPodAutoscaler",
        removed_in: "1.25",
        replacement: "use autoscaling/v2 (`targetAverageUtilization` becomes `target: {type: Utilization, averageUtilization: N}`)",
    },
    Removed {
        api_version: "autoscaling/v2beta2",
        kind: "HorizontalPodAutoscaler",
        removed_in: "1.26",
        replacement: "use autoscaling/v2 (same fields)",
    },
    Removed {
        api_version: "policy/v1beta1",
        kind: "PodDisruptionBudget",
        removed_in: "1.25",
        replacement: "use policy/v1 PodDisruptionBudget (an empty selector now selects every pod of the namespace)",
    },
    Removed {
        api_version: "scheduling.k8s.io/v1beta1",
        kind: "PriorityClass",
        removed_in: "1.22",
        replacement: "use scheduling.k8s.io/v1 PriorityClass",
    },
    Removed {
        api_version: "scheduling.k8s.io/v1alpha1",
        kind: "PriorityClass",
        removed_in: "1.22",
        replacement: "use scheduling.k8s.io/v1 PriorityClass",
    },
    Removed {
        api_version: "rbac.authorization.k8s.io/v1beta1",
        kind: "*",
        removed_in: "1.22",
        replacement: "use rbac.authorization.k8s.io/v1",
    },
    Removed {
        api_version: "rbac.authorization.k8s.io/v1alpha1",
        kind: "*",
        removed_in: "1.22",
        replacement: "use rbac.authorization.k8s.io/v1",
    },
    Removed {
        api_version: "apiextensions.k8s.io/v1beta1",
        kind: "CustomResourceDefinition",
        removed_in: "1.22",
        replacement: "use apiextensions.k8s.io/v1 (`spec.versions[].schema.openAPIV3Schema` is required and must be structural)",
    },
    Removed {
        api_version: "admissionregistration.k8s.io/v1beta1",
        kind: "MutatingWebhookConfiguration",
        removed_in: "1.22",
        replacement: "use admissionregistration.k8s.io/v1 (`sideEffects` and `admissionReviewVersions` are required)",
    },
    Removed {
        api_version: "admissionregistration.k8s.io/v1beta1",
        kind: "ValidatingWebhookConfiguration",
        removed_in: "1.22",
        replacement: "use admissionregistration.k8s.io/v1 (`sideEffects` and `admissionReviewVersions` are required)",
    },
    Removed {
        api_version: "storage.k8s.io/v1beta1",
        kind: "*",
        removed_in: "1.22",
        replacement: "use storage.k8s.io/v1",
    },
    Removed {
        api_version: "discovery.k8s.io/v1beta1",
        kind: "EndpointSlice",
        removed_in: "1.25",
        replacement: "use discovery.k8s.io/v1 EndpointSlice",
    },
    Removed {
        api_version: "events.k8s.io/v1beta1",
        kind: "Event",
        removed_in: "1.25",
        replacement: "use events.k8s.io/v1 Event",
    },
    Removed {
        api_version: "node.k8s.io/v1beta1",
        kind: "RuntimeClass",
        removed_in: "1.25",
        replacement: "use node.k8s.io/v1 RuntimeClass",
    },
    Removed {
        api_version: "certificates.k8s.io/v1beta1",
        kind: "CertificateSigningRequest",
        removed_in: "1.22",
        replacement: "use certificates.k8s.io/v1 (`signerName` is required)",
    },
    Removed {
        api_version: "coordination.k8s.io/v1beta1",
        kind: "Lease",
        removed_in: "1.22",
        replacement: "use coordination.k8s.io/v1 Lease",
    },
    Removed {
        api_version: "flowcontrol.apiserver.k8s.io/v1beta1",
        kind: "*",
        removed_in: "1.26",
        replacement: "use flowcontrol.apiserver.k8s.io/v1",
    },
    Removed {
        api_version: "flowcontrol.apiserver.k8s.io/v1beta2",
        kind: "*",
        removed_in: "1.29",
        replacement: "use flowcontrol.apiserver.k8s.io/v1",
    },
    Removed {
        api_version: "flowcontrol.apiserver.k8s.io/v1beta3",
        kind: "*",
        removed_in: "1.32",
        replacement: "use flowcontrol.apiserver.k8s.io/v1",
    },
];

/// If `api_version`/`kind` is a built-in API that is no longer served, the release that
/// removed it and the migration advice, as one sentence.
pub fn removed(api_version: &str, kind: &str) -> Option<String> {
    REMOVED
        .iter()
        .find(|r| r.api_version == api_version && (r.kind == kind || r.kind == "*"))
        .map(|r| {
            format!(
                "{api_version} {kind} was removed in Kubernetes {}: {}",
                r.removed_in, r.replacement
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_entries_win_over_wildcards() {
        let psp = removed("extensions/v1beta1", "PodSecurityPolicy").expect("removed");
        assert!(psp.contains("Pod Security Admission"), "{psp}");
        let deploy = removed("extensions/v1beta1", "Deployment").expect("removed");
        assert!(deploy.contains("apps/v1"), "{deploy}");
        assert_eq!(removed("apps/v1", "Deployment"), None);
    }
}
