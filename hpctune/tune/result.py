"""Ray's ``ray.tune.result``: the names of the metrics every result carries.

Use them instead of the strings (``result[TRAINING_ITERATION]``); the worker fills them in
(``hpctune.core.metrics.AUTO_METRICS`` lists them all).
"""

TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTEPS_TOTAL = "timesteps_total"
EPISODES_TOTAL = "episodes_total"
DONE = "done"
TRIAL_ID = "trial_id"
EXPERIMENT_TAG = "experiment_tag"
NODE_IP = "node_ip"
HOSTNAME = "hostname"
PID = "pid"
MEAN_ACCURACY = "mean_accuracy"
MEAN_LOSS = "mean_loss"
EPISODE_REWARD_MEAN = "episode_reward_mean"

__all__ = [
    "DONE", "EPISODES_TOTAL", "EPISODE_REWARD_MEAN", "EXPERIMENT_TAG",
    "HOSTNAME", "MEAN_ACCURACY", "MEAN_LOSS", "NODE_IP", "PID", "TIMESTEPS_TOTAL",
    "TIME_THIS_ITER_S", "TIME_TOTAL_S", "TRAINING_ITERATION", "TRIAL_ID",
]
