"""vidtempo.training: Accelerate training loops.

Shared: `options` (the run settings as dataclasses, torch-free), `loop` (run folder, Accelerator, threads,
checkpoints, resume, step records, final save), `config_files` (YAML). TCA: `tca_data`, `tca_losses`,
`tca_memory_bank`, `train_tca`; the learned comparator: `train_comparator`; LocVTP: `locvtp_data`,
`train_locvtp`. The console scripts are in `vidtempo.cli.train_*`. Submodules are imported on demand
(`from vidtempo.training.train_tca import TrainConfig, train`), so importing the package stays cheap.
"""
