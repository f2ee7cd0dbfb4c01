"""vidtempo.training: TCA training with Accelerate (`losses`, `memory_bank`, `data`, `train_tca`).

Submodules are imported on demand (`from vidtempo.training.train_tca import TrainConfig, train`), so that
importing the package stays cheap.
"""
