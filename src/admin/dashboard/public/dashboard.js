// The dashboard's live part: the server renders every section (the page reads fine without this
// file); this only swaps in the sections /events says changed. Plain module, no dependencies.

const connection = document.getElementById('connection');

/** Sets each bar's width from its data attribute: the page's policy allows no inline styles in markup. */
function sizeBars(root) {
  for (const bar of root.querySelectorAll('.bar > span[data-width]')) bar.style.width = `${bar.dataset.width}%`;
}

function say(text) {
  if (connection && connection.textContent !== text) connection.textContent = text;
}

function start() {
  sizeBars(document);
  if (!('EventSource' in window)) return;
  const events = new EventSource('/events');
  events.addEventListener('sections', (event) => {
    const sections = JSON.parse(event.data);
    for (const [id, html] of Object.entries(sections)) {
      const target = document.getElementById(id);
      if (!target) continue;
      target.innerHTML = html;
      sizeBars(target);
    }
    // A constant text: the status region is announced by screen readers on every change.
    say('Live: updates as edgelb changes');
  });
  events.addEventListener('open', () => say('Live: connected'));
  // EventSource reconnects by itself (the server asks for 2 s); say so meanwhile.
  events.addEventListener('error', () => say('Live updates interrupted: reconnecting…'));
}

start();
