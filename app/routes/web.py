"""The browser page at `/`: live microphone or file capture with transcript, emotion and summary."""
from flask import Blueprint, render_template

bp = Blueprint("web", __name__, static_folder="../static", static_url_path="/ui",
               template_folder="../templates")


@bp.get("/")
def index():
    """Serve the single page; its script and styles come from this blueprint's static folder."""
    return render_template("index.html")
