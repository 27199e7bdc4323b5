# Ray Tune reference (ray-tune-docs.rst), section "How do you log arbitrary files from a Tune Trainable?":
# code block 29 of 45, at line 3956. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
import logging_library  # ex: mlflow, wandb
from ray import train


def trainable(config):
    logging_library.init(
        name=trial_id,
        id=trial_id,
        resume=trial_id,
        reinit=True,
        allow_val_change=True)
    logging_library.set_log_path(os.getcwd())

    for step in range(100):
        logging_library.log_model(...)
        logging_library.log(results, step=step)

        # You can also just write to a file directly.
        # The working directory is set to the trial directory, so
        # you don't need to worry about multiple workers saving
        # to the same location.
        with open(f"./artifact_{step}.txt", "w") as f:
            f.write("Artifact Data")

        train.report(results)
