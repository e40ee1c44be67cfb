// The point map's browser side (app/components/point_map.py): one plotly chart per map that
// lives as long as the Streamlit element, updated in place (Plotly.react on the same div, so
// the WebGL context survives), with our own lasso / box drawn on an SVG overlay. On mouse-up
// the points of the id trace inside the drawn shape (tested in pixel space through the plot's
// axes) are sent to Python as {ids, mode, seq}; plotly does no selection work at all.
//
// Lifecycle (Streamlit components v2): this function is called on every mount and again, on
// the same parentElement, whenever the element's data changes; the cleanup it returns runs
// only when the element unmounts. So the chart and its listeners are kept on the container.

const SVG_NS = "http://www.w3.org/2000/svg";
const CLICK_PX = 4; // a drag shorter than this is a click
const DOUBLE_CLICK_MS = 400;

function loadPlotly(url) {
  // one plotly.js per page, loaded from the app's own server (the installed plotly package)
  if (!window.__drgiPointMapPlotly) {
    window.__drgiPointMapPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        window.__drgiPointMapPlotly = undefined;
        reject(new Error(`could not load plotly.js from ${url}`));
      };
      document.head.appendChild(script);
    });
  }
  return window.__drgiPointMapPlotly;
}

const DTYPES = {
  f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
  u2: Uint16Array, i1: Int8Array, u1: Uint8Array,
};

function numbers(value) {
  // a plotly data array: a list, or plotly's base64 form {dtype, bdata}
  if (value && typeof value === "object" && typeof value.bdata === "string") {
    const Typed = DTYPES[value.dtype];
    if (!Typed) throw new Error(`point map: unsupported dtype ${value.dtype}`);
    const raw = atob(value.bdata);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return new Typed(bytes.buffer);
  }
  return value || [];
}

function insidePolygon(px, py, poly) {
  // even-odd rule
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if ((yi > py) !== (yj > py) && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) {
      inside = !inside;
    }
  }
  return inside;
}

function themeLayout(root) {
  const css = getComputedStyle(root);
  const text = css.getPropertyValue("--st-text-color").trim();
  const font = css.getPropertyValue("--st-font").trim();
  const grid = css.getPropertyValue("--st-border-color-light").trim();
  const axis = { gridcolor: grid || undefined, zerolinecolor: grid || undefined };
  return {
    font: { family: font || undefined, color: text || undefined },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    xaxis: axis,
    yaxis: { ...axis },
  };
}

function merge(base, over) {
  // over wins; nested plain objects merged
  const out = { ...base };
  for (const [k, v] of Object.entries(over || {})) {
    if (v && typeof v === "object" && !Array.isArray(v) && base[k] && typeof base[k] === "object") {
      out[k] = merge(base[k], v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

class PointMap {
  constructor(root) {
    this.root = root; // the component's own html: there as soon as the element mounts
    this.gd = document.createElement("div");
    this.gd.className = "point-map-plot";
    this.overlay = document.createElementNS(SVG_NS, "svg");
    this.overlay.setAttribute("class", "point-map-overlay");
    this.path = document.createElementNS(SVG_NS, "path");
    this.overlay.appendChild(this.path);
    this.root.append(this.gd, this.overlay);
    this.root.__pointMap = this;
    this.mode = null; // "lasso" | "box" | null (plotly's own zoom / pan)
    this.plotlyDrag = "zoom";
    this.data = null;
    this.drawn = null;
    this.busy = Promise.resolve();
    this.lastClick = 0;
    this.seq = 0;
    this.onDown = this.onDown.bind(this);
    this.onMove = this.onMove.bind(this);
    this.onUp = this.onUp.bind(this);
    this.gd.addEventListener("mousedown", this.onDown, true);
  }

  update(data, setStateValue) {
    this.setStateValue = setStateValue;
    if (data === this.data) return;
    this.data = data;
    if (this.mode === null && this.drawn === null) this.mode = data.mode || null;
    this.root.removeAttribute("data-drawn");
    this.busy = this.busy
      .then(() => (this.data === data ? this.draw(data) : undefined))
      .catch((err) => this.fail(err));
  }

  config(Plotly, selectable) {
    if (!this.plotConfig) {
      const button = (mode, title, icon) => ({
        name: `point-map-${mode}`, title, icon, attr: "pointmap", val: mode,
        click: () => this.setMode(mode),
      });
      this.plotConfig = {
        displaylogo: false, responsive: true, doubleClick: "reset+autosize",
        modeBarButtonsToRemove: ["lasso2d", "select2d"],
        modeBarButtonsToAdd: selectable ? [
          button("lasso", "Lasso select", Plotly.Icons.lasso),
          button("box", "Box select", Plotly.Icons.selectbox),
        ] : [],
      };
    }
    return this.plotConfig;
  }

  async draw(data) {
    const Plotly = await loadPlotly(data.plotly_url);
    this.Plotly = Plotly;
    const fig = data.figure;
    const layout = merge(themeLayout(this.root), fig.layout || {});
    layout.uirevision = data.view;
    layout.dragmode = this.mode ? false : this.plotlyDrag;
    if (this.drawn === null) {
      await Plotly.newPlot(this.gd, fig.data, layout, this.config(Plotly, data.ids_trace !== null));
      this.gd.on("plotly_relayout", (ev) => {
        if (ev && typeof ev.dragmode === "string") { // plotly's zoom / pan buttons
          this.plotlyDrag = ev.dragmode;
          this.mode = null;
          this.markButtons();
        }
      });
    } else {
      await Plotly.react(this.gd, fig.data, layout, this.config(Plotly, data.ids_trace !== null));
    }
    const trace = (data.ids_trace !== null && fig.data[data.ids_trace]) || {};
    this.xs = numbers(trace.x);
    this.ys = numbers(trace.y);
    this.ids = numbers(trace.customdata);
    this.drawn = data;
    this.root.removeAttribute("data-error");
    for (const note of this.root.querySelectorAll(".point-map-error")) note.remove();
    this.markButtons();
    this.root.setAttribute("data-drawn", String(++this.seq));
  }

  fail(err) {
    this.root.setAttribute("data-error", String(err && err.message ? err.message : err));
    const note = document.createElement("div");
    note.className = "point-map-error";
    note.textContent = `The map could not be drawn: ${err && err.message ? err.message : err}`;
    this.root.appendChild(note);
    console.error(err);
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    if (this.Plotly) this.Plotly.relayout(this.gd, { dragmode: false }).then(() => this.markButtons());
  }

  markButtons() {
    this.root.setAttribute("data-mode", this.mode || "plotly");
    for (const el of this.root.querySelectorAll(".modebar-btn[data-attr=pointmap]")) {
      el.classList.toggle("active", el.getAttribute("data-val") === this.mode);
    }
  }

  plotArea() {
    const full = this.gd._fullLayout;
    if (!full || !full.xaxis || !full.yaxis) return null;
    return { x0: full.xaxis._offset, y0: full.yaxis._offset, w: full.xaxis._length,
             h: full.yaxis._length };
  }

  local(ev) {
    const box = this.gd.getBoundingClientRect();
    return [ev.clientX - box.left, ev.clientY - box.top];
  }

  onDown(ev) {
    if (!this.mode || ev.button !== 0 || !this.drawn) return;
    const area = this.plotArea();
    if (!area) return;
    const [x, y] = this.local(ev);
    if (x < area.x0 || x > area.x0 + area.w || y < area.y0 || y > area.y0 + area.h) return;
    if (ev.target.closest && ev.target.closest(".modebar, .legend")) return;
    ev.stopPropagation(); // plotly neither drags nor selects
    ev.preventDefault();
    this.drag = { mode: this.mode, points: [[x, y]], moved: 0 };
    window.addEventListener("mousemove", this.onMove, true);
    window.addEventListener("mouseup", this.onUp, true);
    this.overlay.setAttribute("width", this.gd.offsetWidth);
    this.overlay.setAttribute("height", this.gd.offsetHeight);
    this.path.setAttribute("d", "");
    this.overlay.style.display = "block";
  }

  shape(drag = this.drag) {
    const pts = drag.points;
    if (drag.mode === "box") {
      const [x0, y0] = pts[0];
      const [x1, y1] = pts[pts.length - 1];
      return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
    }
    return pts;
  }

  onMove(ev) {
    ev.stopPropagation(); // no hover work while drawing
    const p = this.local(ev);
    const [x0, y0] = this.drag.points[0];
    this.drag.moved = Math.max(this.drag.moved, Math.hypot(p[0] - x0, p[1] - y0));
    if (this.drag.mode === "box") this.drag.points = [this.drag.points[0], p];
    else this.drag.points.push(p);
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        if (!this.drag) return;
        this.path.setAttribute("d", `M${this.shape().map((q) => q.join(",")).join("L")}Z`);
      });
    }
  }

  onUp(ev) {
    ev.stopPropagation();
    window.removeEventListener("mousemove", this.onMove, true);
    window.removeEventListener("mouseup", this.onUp, true);
    const drag = this.drag;
    this.drag = null;
    this.overlay.style.display = "none";
    if (drag.moved < CLICK_PX) { // a click; two quick ones reset the view like plotly's
      const now = Date.now();
      if (now - this.lastClick < DOUBLE_CLICK_MS && this.Plotly) {
        this.Plotly.relayout(this.gd, { "xaxis.autorange": true, "yaxis.autorange": true });
        this.lastClick = 0;
      } else {
        this.lastClick = now;
      }
      return;
    }
    const ids = this.inside(drag);
    this.setStateValue("selection", { ids, mode: drag.mode, seq: `${Date.now()}-${this.seq}` });
  }

  inside(drag) {
    // the ids of the id trace's points whose pixel position lies inside the drawn shape
    const poly = this.shape(drag);
    const full = this.gd._fullLayout;
    const xa = full.xaxis;
    const ya = full.yaxis;
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (const [x, y] of poly) {
      minX = Math.min(minX, x); maxX = Math.max(maxX, x);
      minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    const box = drag.mode === "box";
    const out = [];
    for (let i = 0; i < this.xs.length; i++) {
      const px = xa.l2p(this.xs[i]) + xa._offset;
      const py = ya.l2p(this.ys[i]) + ya._offset;
      if (px < minX || px > maxX || py < minY || py > maxY) continue;
      if (box || insidePolygon(px, py, poly)) out.push(Number(this.ids[i]));
    }
    return out;
  }

  destroy() {
    window.removeEventListener("mousemove", this.onMove, true);
    window.removeEventListener("mouseup", this.onUp, true);
    if (this.Plotly) this.Plotly.purge(this.gd);
    this.root.replaceChildren();
    delete this.root.__pointMap;
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".point-map");
  const map = root.__pointMap || new PointMap(root);
  map.update(data, setStateValue);
  // Streamlit also calls the cleanup of a call whose data was replaced before it ran: only a
  // map whose element left the page is torn down
  return () => setTimeout(() => { if (!map.root.isConnected) map.destroy(); }, 0);
}
