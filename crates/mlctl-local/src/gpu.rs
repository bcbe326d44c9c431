//! The GPUs of this machine: discovered with NVML where an NVIDIA driver is present, or
//! declared (`--gpus N`, `MLCTL_GPUS`) where none is, so that GPU scheduling works and can be
//! tested on any machine. Declared GPUs are ids `0..N`; the assignment reaches processes as
//! `CUDA_VISIBLE_DEVICES` / `NVIDIA_VISIBLE_DEVICES`.

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// The id processes see (`CUDA_VISIBLE_DEVICES` index).
    pub id: String,
    /// The model, as a node label value (`nvidia-tesla-v100-sxm2-16gb`).
    pub model: String,
}

/// Where the GPUs come from.
pub trait GpuSource {
    /// The GPUs, or why they cannot be listed.
    fn gpus(&self) -> Result<Vec<Gpu>, String>;
}

/// GPUs declared by the user.
#[derive(Debug, Clone)]
pub struct Declared {
    /// How many.
    pub count: u32,
    /// Their model label.
    pub model: String,
}

impl GpuSource for Declared {
    fn gpus(&self) -> Result<Vec<Gpu>, String> {
        Ok((0..self.count)
            .map(|i| Gpu {
                id: i.to_string(),
                model: self.model.clone(),
            })
            .collect())
    }
}

/// GPUs found by NVML (the NVIDIA driver's management library, loaded at run time).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nvml;

/// The devices through which NVML reaches a driver: the NVIDIA driver's control device, or
/// WSL's GPU device. Without them there is no GPU to find, and the library is not looked for
/// (the loader tries every directory of its path for it: ~1 ms at every `mlctl run`).
const DRIVER_DEVICES: [&str; 2] = ["/dev/nvidiactl", "/dev/dxg"];

impl GpuSource for Nvml {
    fn gpus(&self) -> Result<Vec<Gpu>, String> {
        if !DRIVER_DEVICES
            .iter()
            .any(|d| std::path::Path::new(d).exists())
        {
            return Err(format!(
                "NVML is not available: no NVIDIA driver ({} missing)",
                DRIVER_DEVICES[0]
            ));
        }
        let nvml = nvml_wrapper::Nvml::init().map_err(|e| format!("NVML is not available: {e}"))?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("NVML could not count devices: {e}"))?;
        (0..count)
            .map(|i| {
                let device = nvml
                    .device_by_index(i)
                    .map_err(|e| format!("NVML could not open device {i}: {e}"))?;
                let name = device.name().unwrap_or_else(|_| "nvidia-gpu".into());
                Ok(Gpu {
                    id: i.to_string(),
                    model: model_label(&name),
                })
            })
            .collect()
    }
}

/// A GPU product name as a label value: `Tesla V100-SXM2-16GB` becomes
/// `nvidia-tesla-v100-sxm2-16gb`.
pub fn model_label(name: &str) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while label.contains("--") {
        label = label.replace("--", "-");
    }
    let label = label.trim_matches('-');
    if label.starts_with("nvidia") {
        label.to_string()
    } else {
        format!("nvidia-{label}")
    }
}

/// The machine's GPUs: the declared ones if any are declared, else NVML's, else none (with
/// the reason NVML gave, for `describe` to show).
pub fn discover(declared: Option<Declared>) -> (Vec<Gpu>, Option<String>) {
    if let Some(d) = declared {
        return (d.gpus().unwrap_or_default(), None);
    }
    match Nvml.gpus() {
        Ok(gpus) => (gpus, None),
        Err(why) => (Vec::new(), Some(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(
            model_label("Tesla V100-SXM2-16GB"),
            "nvidia-tesla-v100-sxm2-16gb"
        );
        assert_eq!(
            model_label("NVIDIA A100 80GB PCIe"),
            "nvidia-a100-80gb-pcie"
        );
    }

    #[test]
    fn declared_gpus_have_sequential_ids() {
        let (gpus, why) = discover(Some(Declared {
            count: 2,
            model: "nvidia-tesla-t4".into(),
        }));
        assert_eq!(why, None);
        assert_eq!(
            gpus.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["0", "1"]
        );
    }

    #[test]
    fn without_a_driver_nvml_reports_why() {
        // This machine class has no NVIDIA driver; where one exists the list is real.
        match Nvml.gpus() {
            Ok(gpus) => assert!(gpus.iter().all(|g| g.model.starts_with("nvidia"))),
            Err(why) => assert!(why.starts_with("NVML"), "{why}"),
        }
    }
}
