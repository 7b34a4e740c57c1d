// The dataframe view: a table of one entity's rows (GET /api/recordings/{id}/dataframe),
// virtually scrolled: the scroller holds a spacer as tall as every row, and only the rows
// in view (plus a margin) exist as elements. Pages of rows are fetched as they come into
// view and kept in a bounded cache, so 100,000 rows scroll as smoothly as 100.

const ROW_HEIGHT = 20;
const PAGE_ROWS = 200;
const PAGES_KEPT = 50;
const MARGIN_ROWS = 10;

export class Table {
  constructor(root) {
    this.root = root;
    this.header = document.createElement('div');
    this.header.className = 'df-header';
    this.scroller = document.createElement('div');
    this.scroller.className = 'df-scroller';
    this.spacer = document.createElement('div');
    this.spacer.className = 'df-spacer';
    this.body = document.createElement('div');
    this.body.className = 'df-body';
    this.spacer.append(this.body);
    this.scroller.append(this.spacer);
    this.status = document.createElement('div');
    this.status.className = 'df-status';
    root.append(this.header, this.scroller, this.status);
    this.scroller.addEventListener('scroll', () => this.render());
    this.pages = new Map(); // page number -> rows, insertion order = age
    this.loading = new Set();
    this.total = 0;
    this.columns = [];
    this.url = null;
  }

  /** Shows `entity`'s rows (its `timeline` first). */
  async show(recording, entity, timeline) {
    if (!entity) {
      this.status.textContent = 'no entity to show';
      return;
    }
    const query = new URLSearchParams({ entity });
    if (timeline) query.set('timeline', timeline);
    this.url = `/api/recordings/${encodeURIComponent(recording)}/dataframe?${query}`;
    this.pages.clear();
    this.loading.clear();
    const first = await this.fetchPage(0);
    if (!first) return;
    this.header.replaceChildren(...this.columns.map((c) => cell(c.name)));
    this.render();
  }

  async fetchPage(page) {
    const url = this.url;
    this.loading.add(page);
    try {
      const response = await fetch(`${url}&offset=${page * PAGE_ROWS}&limit=${PAGE_ROWS}`, { cache: 'no-store' });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      if (url !== this.url) return null; // another entity meanwhile
      this.total = body.total;
      this.columns = body.columns;
      this.pages.set(page, body.rows);
      for (const old of this.pages.keys()) {
        if (this.pages.size <= PAGES_KEPT) break;
        this.pages.delete(old);
      }
      this.spacer.style.height = `${this.total * ROW_HEIGHT}px`;
      return body;
    } catch (error) {
      this.status.textContent = `table: ${error.message}`;
      return null;
    } finally {
      this.loading.delete(page);
    }
  }

  /** Rows in view: from the cached pages; missing pages are fetched, then rendered. */
  render() {
    const first = Math.max(Math.floor(this.scroller.scrollTop / ROW_HEIGHT) - MARGIN_ROWS, 0);
    const count = Math.ceil(this.scroller.clientHeight / ROW_HEIGHT) + 2 * MARGIN_ROWS;
    const last = Math.min(first + count, this.total);
    const rows = [];
    for (let i = first; i < last; i++) {
      const page = Math.floor(i / PAGE_ROWS);
      const values = this.pages.get(page)?.[i - page * PAGE_ROWS];
      if (!values) {
        if (!this.loading.has(page)) this.fetchPage(page).then(() => this.render());
        continue;
      }
      const row = document.createElement('div');
      row.className = 'df-row';
      row.dataset.row = String(i);
      row.style.top = `${i * ROW_HEIGHT}px`;
      row.append(...values.map((v, c) => cell(format(v, this.columns[c]))));
      rows.push(row);
    }
    this.body.replaceChildren(...rows);
    this.status.textContent = `${this.total} rows; showing ${first}–${Math.max(last - 1, first)}`;
  }

  /** Scrolls so that row `i` is at the top (tests and keyboard use). */
  scrollToRow(i) {
    this.scroller.scrollTop = i * ROW_HEIGHT;
    this.render();
  }
}

function cell(text) {
  const span = document.createElement('span');
  span.textContent = text;
  return span;
}

function format(value, column) {
  if (value == null) return '–';
  if (column?.kind === 'duration') return `${(value / 1e9).toFixed(3)} s`;
  if (column?.kind === 'bool') return value ? 'yes' : '';
  return String(value);
}

export { ROW_HEIGHT };
