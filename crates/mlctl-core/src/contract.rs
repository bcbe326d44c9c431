//! The contracts between mlctl and the processes it runs, the same on the local runtime and
//! on Kubernetes: the distributed-training environment, where output parameters go, and how
//! GPUs are assigned.

/// The directory a process writes its output parameters to, one file per output.
pub const OUTPUTS_ENV: &str = "MLCTL_OUTPUTS";

/// The environment of worker `rank` of a gang of `world_size` workers, one worker per node in
/// torchrun's terms (so each worker owns its GPUs, as one pod per worker on Kubernetes):
/// `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE`, `RANK`, `LOCAL_RANK` (0), `NODE_RANK`,
/// `JOB_COMPLETION_INDEX` (both the rank), and torchrun's `PET_NNODES`, `PET_NPROC_PER_NODE`,
/// `PET_NODE_RANK`, `PET_MASTER_ADDR`, `PET_MASTER_PORT`.
pub fn worker_env(
    world_size: u32,
    rank: u32,
    master_addr: &str,
    master_port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("MASTER_ADDR", master_addr.to_string()),
        ("MASTER_PORT", master_port.to_string()),
        ("WORLD_SIZE", world_size.to_string()),
        ("RANK", rank.to_string()),
        ("LOCAL_RANK", "0".to_string()),
        ("NODE_RANK", rank.to_string()),
        ("JOB_COMPLETION_INDEX", rank.to_string()),
        ("PET_NNODES", world_size.to_string()),
        ("PET_NPROC_PER_NODE", "1".to_string()),
        ("PET_NODE_RANK", rank.to_string()),
        ("PET_MASTER_ADDR", master_addr.to_string()),
        ("PET_MASTER_PORT", master_port.to_string()),
    ]
}

/// The environment that gives a process exactly the GPUs `ids` (none hides every GPU, so a
/// CPU job on a GPU machine cannot take one by accident).
pub fn gpu_env(ids: &[String]) -> Vec<(&'static str, String)> {
    let list = ids.join(",");
    vec![
        ("CUDA_VISIBLE_DEVICES", list.clone()),
        (
            "NVIDIA_VISIBLE_DEVICES",
            if ids.is_empty() {
                "void".to_string()
            } else {
                list
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_env_is_consistent() {
        let env = worker_env(4, 2, "127.0.0.1", 29500);
        let get = |k: &str| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.as_str())
                .expect(k)
        };
        assert_eq!(get("RANK"), "2");
        assert_eq!(get("NODE_RANK"), "2");
        assert_eq!(get("JOB_COMPLETION_INDEX"), "2");
        assert_eq!(get("LOCAL_RANK"), "0");
        assert_eq!(get("PET_NNODES"), get("WORLD_SIZE"));
        assert_eq!(get("PET_MASTER_PORT"), get("MASTER_PORT"));
    }

    #[test]
    fn gpu_env_hides_gpus_from_cpu_jobs() {
        assert_eq!(gpu_env(&[])[0], ("CUDA_VISIBLE_DEVICES", String::new()));
        assert_eq!(
            gpu_env(&["0".into(), "3".into()])[0],
            ("CUDA_VISIBLE_DEVICES", "0,3".to_string())
        );
    }
}
