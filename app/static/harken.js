// Harken's browser page, as native ES modules (no build step, nothing fetched but from this
// server): captures the microphone or streams a file through the live API and shows the SSE
// events as they arrive. The modules are under js/; docs/browser.md maps them.
import { start } from "./js/app.js";

start(document);
