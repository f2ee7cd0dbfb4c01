"""vidtempo.training: Accelerate training loops.

TCA: `tca_data`, `tca_losses`, `tca_memory_bank`, `train_tca`; the learned comparator: `train_comparator`;
LocVTP: `locvtp_data`, `train_locvtp`. Submodules are imported on demand
(`from vidtempo.training.train_tca import TrainConfig, train`), so importing the package stays cheap.
"""
