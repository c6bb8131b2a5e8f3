"""Three parts of the explorer's page, each a class that lays out its Gradio components
where it is made (inside ``page.build``'s ``gr.Blocks``) and answers its events:

- ``Backward``: the step-through of the digit (``backward_views.backward_view``), for the
  plain gradient or a rule chosen in a dropdown;
- ``Conservation``: the LRP, DeepLIFT and integrated-gradients maps beside the plot of
  their totals at every layer (``backward_views.conservation_view``);
- ``ReportCard``: ``RUN_DIR/report-card.md`` as a table, or a button that computes it in
  the background (``card.CardJob``), with its progress.

``then(event)`` puts a part's work after ``event`` in the page's chain of work for a new
digit (``trigger_mode="always_last"``: a new stroke drops what is pending). Every use of
the model holds the page's ``lock``.
"""
import os

from .backward_views import LRP_CHOICES, RULES, backward_view, conservation_view
from .card import CACHE, read_card
from .preprocess import model_input

ALWAYS_LAST = dict(trigger_mode="always_last")
# Maps stay crisp, captions whole; the report card's wide table a little smaller.
CSS = "#backward img, #conservation_maps img {image-rendering: pixelated;} "\
      "#backward .caption-label, #conservation_maps .caption-label "\
      "{white-space: normal; max-width: 95%;} "\
      "#card table {font-size: 85%;} #card td, #card th {padding: 3px 6px;}"


def _no_digit(digit):
    return digit is None or not digit.any()


class _LayerSection:
    """A section redrawn on every stroke: ``show(digit, target, choice)`` (subclasses) under
    the model's ``lock``; ``then(event)`` chains it after the page's faster parts."""

    def __init__(self, model, lock, target_of):
        self.model, self.lock, self.target_of = model, lock, target_of

    def wire(self, digit, target, choice, outputs):
        self.inputs, self.outputs = [digit, target, choice], outputs
        choice.change(self.show, self.inputs, self.outputs, **ALWAYS_LAST)

    def then(self, event):
        return event.then(self.show, self.inputs, self.outputs, **ALWAYS_LAST)


class Backward(_LayerSection):
    """The backward pass, layer by layer: per layer the signal it sent down and its check."""

    def __init__(self, model, lock, target_of, digit, target):
        import gradio as gr
        super().__init__(model, lock, target_of)
        gr.Markdown("## The backward pass, layer by layer\nEach layer's backward gets the "
                    "signal at its output and sends one to its input, shown here for every "
                    "layer (all channels, one scale per layer). With the plain gradient each "
                    "layer's backward is checked against a float64 finite difference on the "
                    "input it saw (`viz.step_through`); a swapped rule says instead how far "
                    "its signal is from the gradient.")
        self.rule = gr.Dropdown(choices=RULES, value="gradient", label="backward rule",
                                elem_id="rule")
        self.gallery = gr.Gallery(label="the signal each layer sends down", columns=6,
                                  format="png", object_fit="contain", height="auto",
                                  elem_id="backward")
        self.table = gr.Markdown("", elem_id="backward_checks")
        self.wire(digit, target, self.rule, [self.gallery, self.table])

    def show(self, digit, target, rule):
        if _no_digit(digit):
            return [], ""
        with self.lock:
            panels, table = backward_view(self.model, model_input(digit),
                                          self.target_of(target), rule)
        return [(image, caption) for caption, image in panels], table


class Conservation(_LayerSection):
    """LRP, DeepLIFT and integrated gradients, and their totals at every layer."""

    def __init__(self, model, lock, target_of, digit, target):
        import gradio as gr
        super().__init__(model, lock, target_of)
        gr.Markdown("## Where the relevance goes, layer by layer\nLRP, DeepLIFT and "
                    "integrated gradients share the class's score out over the pixels; the "
                    "plot sums what each holds at every layer's input "
                    "(`viz.relevance_by_layer`): a flat line keeps the total, a step is "
                    "where biases, epsilon or the path lose it. Beside it, the residuals of "
                    "the identities that define them (`viz.identity_residuals`).")
        self.lrp = gr.Dropdown(choices=LRP_CHOICES, value="lrp-epsilon",
                               label="LRP rule or composite", elem_id="lrp_rule")
        with gr.Row(equal_height=True):
            self.maps = gr.Gallery(label="the maps", columns=3, format="png", scale=2,
                                   height=220, object_fit="contain",
                                   elem_id="conservation_maps")
            self.plot = gr.Image(label="the total at each layer's input", format="png",
                                 interactive=False, scale=5, elem_id="conservation")
        self.wire(digit, target, self.lrp, [self.maps, self.plot])

    def show(self, digit, target, lrp_method):
        if _no_digit(digit):
            return [], None
        with self.lock:
            maps, plot = conservation_view(self.model, model_input(digit),
                                           self.target_of(target), lrp_method)
        return [(image, title) for title, image in maps], plot


class ReportCard:
    """``RUN_DIR/report-card.md``, or a button that computes it (``job``: a ``CardJob``,
    or ``None`` without test images); ``wire(page)`` reads the file at each page load."""

    def __init__(self, run_dir, job):
        import gradio as gr
        self.run_dir, self.job = run_dir, job
        gr.Markdown("## Report card: every attribution method on this network")
        self.status = gr.HTML("", elem_id="card_status")
        self.button = gr.Button("compute the report card", visible=False, elem_id="card_button")
        self.table = gr.Markdown("", elem_id="card")
        self.timer = gr.Timer(1.0, active=False)
        self.outputs = [self.status, self.button, self.table, self.timer]

    def wire(self, page):
        page.load(self.show, None, self.outputs)
        self.timer.tick(self.show, None, self.outputs)
        self.button.click(self.start, None, self.outputs)

    def start(self):
        if self.job is not None:
            self.job.start()
        return self.show()

    def show(self):
        """``(status, button, table, timer)``: the progress while the job runs (the table
        is left as it is), else the card file, or the button when there is none."""
        import gradio as gr
        job = self.job
        if job is not None and job.state == "running":
            done, total, method = job.progress()
            status = (f"report card: <progress value='{done}' max='{max(total, 1)}'></progress>"
                      f" method {done + 1} of {total or '?'}: {method} "
                      f"({job.seconds():.0f} s)")
            return status, gr.Button(visible=False), gr.skip(), gr.Timer(active=True)
        text = read_card(self.run_dir) if self.run_dir is not None else None
        status = ""
        if job is not None and job.state == "done":
            status = f"report card {job.message}"
        elif job is not None and job.state == "failed":
            status = f"report card failed: {job.message}"
        elif text is None:
            status = self._how()
        can_start = text is None and job is not None
        return status, gr.Button(visible=can_start), text or "", gr.Timer(active=False)

    def _how(self):
        if self.run_dir is None:
            return "no report card: the page was started without a run folder"
        if self.job is None:
            return (f"no report card in {self.run_dir} yet, and no test images to make one "
                    f"(`minicnn report-card {self.run_dir}`, or start the explorer with "
                    f"its data)")
        return (f"no report card in {self.run_dir} yet: the button computes it in the "
                f"background on the first {self.job.images} test images (sanity on "
                f"{self.job.sanity_images}), as `minicnn report-card` does: minutes on a "
                f"CPU, cached in {os.path.join(self.run_dir, CACHE)}")


__all__ = ["Backward", "Conservation", "ReportCard", "CSS"]
