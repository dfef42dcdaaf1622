"""Sample pictures from the fixed noise: samples/real.png once, then samples/step_NNNNNNN.png and
TensorBoard images every N steps and at the end. Grids for images, scatter plots over the real data for
2-D points (the data's modality draws them)."""

from __future__ import annotations

import logging

from torch import Tensor

from gan_cli import visuals
from gan_cli.callbacks.base import Callback

log = logging.getLogger(__name__)


class Pictures(Callback):
    def __init__(self, every: int = 500):
        self.every = every  # steps between pictures; 0: only the last
        self._real: Tensor | None = None
        self._view = ""  # the algorithm's view (ProGAN's resolution) whose real samples were last pictured

    def on_fit_start(self, run) -> None:
        if run.step == 0 and run.world.main:
            real = run.data.first(len(run.fixed.z))
            self._write(run, "samples/real", run.data.modality.real_picture(real, run.data.scale), "real.png")

    def on_step_end(self, run) -> None:
        if run.at(self.every) and not run.last_step:
            self.draw(run)

    def on_fit_end(self, run) -> None:
        self.draw(run)

    def draw(self, run) -> None:
        """The algorithm's picture of its samples (of the fixed noise, or of fixed inputs), and the samples handed
        to whoever judges them (run.pictured)."""
        run.check_finite()
        algorithm = run.algorithm
        real = algorithm.as_seen(self.real_reference(run))  # as D sees them now, for a fair comparison
        fake, image = algorithm.picture(run, real)
        view = algorithm.view()  # e.g. ProGAN's "16x16": the tag's last part, and a picture of real data as D sees it
        if run.world.main:
            if view and view != self._view:
                shown = run.data.modality.real_picture(real[:len(fake)], run.data.scale)
                self._write(run, f"samples/real/{view}", shown, f"real_{view}.png")
            path = self._write(run, "/".join(filter(None, ("samples/fake", view))), image, f"step_{run.step:07d}.png")
            log.info("step %d: samples in %s", run.step, path)
        self._view = view
        run.pictured = (fake, real[:len(fake)])

    def real_reference(self, run) -> Tensor:
        """The real samples pictures and probes compare against: read once, then reused (a folder data set
        would otherwise be read from disk at every picture)."""
        if self._real is None:
            self._real = run.data.first(run.data.modality.reference_size(len(run.fixed.z)))
        return self._real

    def _write(self, run, tag: str, image: Tensor, name: str):
        run.writer.add_image(tag, image, run.step)
        return visuals.save_png(image, run.run_dir / "samples" / name)
