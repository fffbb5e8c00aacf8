"""Experiment tracking: MLflow by default (a sqlite file under the data directory, no server), W&B when installed.

Training and evaluation talk to one small interface, so a run logs the same things whichever tracker is behind it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

MLFLOW_DB = "mlflow.db"


class Tracker(Protocol):
    run_id: str

    def log_params(self, params: dict) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_dict(self, data: dict, name: str) -> None: ...

    def log_dir(self, path: Path, name: str) -> None: ...

    def finish(self, failed: bool = False) -> None: ...


def mlflow_uri(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / MLFLOW_DB}"


class MlflowTracker:
    def __init__(self, data_dir: Path, experiment: str, run_name: str | None = None, run_id: str | None = None):
        import mlflow

        self.mlflow = mlflow
        self.client = mlflow.tracking.MlflowClient(mlflow_uri(data_dir))
        if run_id:  # a resumed training continues its run
            self.run_id = run_id
            return
        found = self.client.get_experiment_by_name(experiment)
        # Artifacts beside the database, not in whatever folder the command happened to run from.
        experiment_id = (
            found.experiment_id
            if found
            else self.client.create_experiment(
                experiment, artifact_location=(Path(data_dir).resolve() / "mlartifacts").as_uri()
            )
        )
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id

    def log_params(self, params: dict) -> None:
        for key, value in params.items():
            self.client.log_param(self.run_id, key, str(value)[:6000])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.client.log_metric(self.run_id, key.replace("@", "_at_"), float(value), step=step or 0)

    def log_dict(self, data: dict, name: str) -> None:
        self.client.log_text(self.run_id, json.dumps(data, indent=2, default=str), name)

    def log_dir(self, path: Path, name: str) -> None:
        self.client.log_artifacts(self.run_id, str(path), name)

    def finish(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class WandbTracker:
    def __init__(self, data_dir: Path, experiment: str, run_name: str | None = None, run_id: str | None = None):
        try:
            import wandb
        except ImportError as exc:
            raise RuntimeError("--tracker wandb needs the wandb package: pip install wandb") from exc
        self.run = wandb.init(
            project=experiment, name=run_name, dir=str(data_dir), id=run_id, resume="allow" if run_id else None
        )
        self.run_id = self.run.id

    def log_params(self, params: dict) -> None:
        self.run.config.update({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.run.log(metrics, step=step)

    def log_dict(self, data: dict, name: str) -> None:
        self.run.summary.update({f"{name}/{k}": v for k, v in data.items() if isinstance(v, (int, float, str))})

    def log_dir(self, path: Path, name: str) -> None:
        import wandb

        artifact = wandb.Artifact(name, type="model")
        artifact.add_dir(str(path))
        self.run.log_artifact(artifact)

    def finish(self, failed: bool = False) -> None:
        import wandb

        self.run.finish(exit_code=1 if failed else 0)
        # finish() can return before W&B's service has written the run's records (an offline run file was seen
        # holding only its header right after a training run on a busy machine); teardown waits for them, so the
        # run is whole on disk when the command returns, not only at interpreter exit.
        wandb.teardown()


class NoTracker:
    run_id = ""

    def log_params(self, params: dict) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_dict(self, data: dict, name: str) -> None:
        pass

    def log_dir(self, path: Path, name: str) -> None:
        pass

    def finish(self, failed: bool = False) -> None:
        pass


def open_tracker(
    kind: str, data_dir: Path, experiment: str, run_name: str | None = None, run_id: str | None = None
) -> Tracker:
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    if kind == "mlflow":
        return MlflowTracker(data_dir, experiment, run_name, run_id)
    if kind == "wandb":
        return WandbTracker(data_dir, experiment, run_name, run_id)
    if kind == "none":
        return NoTracker()
    raise ValueError(f"unknown tracker {kind!r}: mlflow, wandb or none")
