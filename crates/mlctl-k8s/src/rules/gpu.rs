//! GPU scheduling mistakes: hand-set `CUDA_VISIBLE_DEVICES`, and LimitRange defaults that
//! put a GPU on every container of a namespace.

use mlctl_core::path::FieldPath;
use mlctl_core::yaml::Node;

use super::{Ctx, Emitter};
use crate::manifest::is_gpu_resource;

/// `CUDA_VISIBLE_DEVICES` set by hand.
pub fn cuda_visible_devices(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        for c in obj.containers() {
            let gpus = c
                .resource_names("limits")
                .into_iter()
                .chain(c.resource_names("requests"))
                .any(is_gpu_resource);
            for (i, name, entry) in c.env() {
                if name != "CUDA_VISIBLE_DEVICES" || entry.get("value").is_none() {
                    continue;
                }
                let value = entry
                    .get("value")
                    .and_then(|v| v.scalar_text())
                    .unwrap_or_default();
                // "" or -1 hide all GPUs on purpose (CPU-only run); leave those alone
                if value.is_empty() || value == "-1" || value.contains("$(") {
                    continue;
                }
                let why = if gpus {
                    "the device plugin already exposes exactly the allocated GPUs to the container (renumbered from 0); a hand-set list hides GPUs when more are allocated, or names devices that do not exist"
                } else {
                    "the container requests no GPU, so none is exposed to it: the variable names devices that do not exist"
                };
                e.report(
                    obj,
                    c.path.key("env").index(i),
                    format!("CUDA_VISIBLE_DEVICES is set by hand to `{value}`: {why}"),
                    Some(
                        "remove it and request GPUs with `resources.limits.nvidia.com/gpu`"
                            .to_string(),
                    ),
                );
            }
        }
    }
}

/// LimitRange `default`/`defaultRequest` with a GPU.
pub fn limitrange_gpu_default(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.of_kind("", "LimitRange") {
        let items = obj
            .at("spec.limits")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let ty = item.get("type").and_then(Node::as_str).unwrap_or("");
            if ty != "Container" && ty != "Pod" {
                continue;
            }
            for field in ["default", "defaultRequest"] {
                let Some(map) = item.get(field).and_then(Node::as_map) else {
                    continue;
                };
                for entry in map.iter().filter(|e| is_gpu_resource(&e.key)) {
                    let ns = obj.namespace.unwrap_or("the namespace");
                    e.report(
                        obj,
                        FieldPath::parse("spec.limits").index(i).key(field).key(entry.key.clone()),
                        format!(
                            "every container in {ns} that does not set `{}` gets {} of it by default: CPU-only pods, sidecars and init containers then each hold a GPU or stay Pending",
                            entry.key,
                            entry.value.scalar_text().unwrap_or_default()
                        ),
                        Some(format!("remove `{}` from `{field}`; keep `max` to cap GPU requests, and let GPU workloads request GPUs explicitly", entry.key)),
                    );
                }
            }
        }
    }
}
