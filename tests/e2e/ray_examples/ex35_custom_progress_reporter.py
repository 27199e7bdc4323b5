# Ray Tune reference (ray-tune-docs.rst), section "Tune Console Output (Reporters)":
# code block 35 of 45, at line 4194. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
from ray.tune import ProgressReporter


class CustomReporter(ProgressReporter):

    def should_report(self, trials, done=False):
        return True

    def report(self, trials, *sys_info):
        print(*sys_info)
        print("\n".join([str(trial) for trial in trials]))

tuner = tune.Tuner(my_trainable, run_config=RunConfig(progress_reporter=CustomReporter()))
results = tuner.fit()
