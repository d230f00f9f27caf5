"""The training progress display: a tqdm bar when tqdm is installed, plain prints otherwise.

tqdm is an optional dependency (``pip install 'fastnn[progress]'``).
"""

import sys


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return tqdm


class Progress:
    """One line per fit: epoch, training loss and (with early stopping) validation score/loss.

    ``verbose`` is the estimator's: falsy shows nothing; truthy shows a tqdm bar (or, without
    tqdm, prints one line per epoch like scikit-learn: ``Iteration 3, loss = 0.12345678``).
    """

    def __init__(self, verbose, total, desc="fastnn"):
        self.enabled = bool(verbose)
        self.bar = None
        if self.enabled:
            tqdm = _tqdm()
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit="epoch", leave=True, file=sys.stderr)

    def update(self, epoch, loss, val_score=None, val_loss=None):
        if not self.enabled:
            return
        if self.bar is not None:
            post = {"loss": f"{loss:.6g}"}
            if val_score is not None:
                post["val_score"] = f"{val_score:.4f}"
            if val_loss is not None:
                post["val_loss"] = f"{val_loss:.6g}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        else:
            print("Iteration %d, loss = %.8f" % (epoch, loss))
            if val_score is not None:
                print("Validation score: %f" % val_score)

    def message(self, msg):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
