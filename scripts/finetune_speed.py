"""How long a "teach it" fine-tune takes on one core: its steps alone, and the whole job.

MNIST_DIR=../shared/mnist python scripts/finetune_speed.py --steps 200
Runs in this process as a job's process runs (one BLAS thread, malloc kept, the job's nice
level is left out), with ten MNIST test digits standing in for a learner's drawings. Prints
JSON: the optimizer steps' wall and CPU seconds (16 examples + 16 replayed images a step), and
the whole job's (loading, its evaluations, the blend, the test set) from runner.finetune_job.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from server.cnn import load_model
from server.inference import file_sha256
from server.training.finetune import Finetune, FinetuneConfig
from server.training.jobs.request import FinetuneJobConfig
from server.training.jobs.runner import BLAS_THREADS, finetune_job
from server.training.memory import keep_freed_memory
from server.training.mnist import default_data_dir, load_mnist


class Silent:
    """A reporter that keeps nothing: the job's messages cost their copies, not a pipe."""

    def check(self) -> None:
        pass

    def send(self, message: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--weights", type=Path, default=Path("model_weights/mnist_cnn.npz"))
    args = parser.parse_args()
    keep_freed_memory()
    data = load_mnist(default_data_dir())
    examples = data.test_images[:10].astype(np.float32) / 255.0  # (10, 28, 28)
    labels = data.test_labels[:10].astype(np.int64)
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        model = copy.deepcopy(load_model(args.weights).model)
        run = Finetune(
            model,
            examples,
            labels,
            data.train_images,
            data.train_labels,
            FinetuneConfig(steps=args.steps),
        )
        rng = np.random.default_rng(0)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in run.steps(rng):
            pass
        steps_s = (time.perf_counter() - wall, time.process_time() - cpu)
        config = FinetuneJobConfig(
            base_model="mnist_cnn",
            base_path=str(args.weights),
            base_sha256=file_sha256(args.weights),
            examples=examples,
            labels=tuple(int(label) for label in labels),
            steps=args.steps,
        )
        wall, cpu = time.perf_counter(), time.process_time()
        finetune_job(config, default_data_dir(), Silent())  # type: ignore[arg-type]
        job_s = (time.perf_counter() - wall, time.process_time() - cpu)
    print(
        json.dumps(
            {
                "steps": args.steps,
                "images_a_step": 32,
                "steps_wall_s": steps_s[0],
                "steps_cpu_s": steps_s[1],
                "job_wall_s": job_s[0],
                "job_cpu_s": job_s[1],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
