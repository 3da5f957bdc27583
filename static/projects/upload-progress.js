// Polls a background upload's status and fills the admin's progress bar.
const root = document.getElementById("upload-job");
const bar = document.getElementById("upload-progress");
const text = document.getElementById("upload-text");
const errors = document.getElementById("upload-errors");
const next = document.getElementById("upload-next");
const link = document.getElementById("upload-batch-link");

function show(status) {
  bar.max = Math.max(1, status.total);
  bar.value = status.done;
  if (status.state === "done") {
    text.textContent = `Done: ${status.total.toLocaleString()} work units created in ${status.elapsed_s} s.`;
    if (status.batch_url) link.href = status.batch_url;
    next.hidden = false;
  } else if (status.state === "failed") {
    text.textContent = "Failed: nothing was created.";
    errors.replaceChildren(...status.errors.map((message) => {
      const item = document.createElement("li");
      item.textContent = message;
      return item;
    }));
  } else {
    text.textContent = `${status.done.toLocaleString()} of ${status.total.toLocaleString()} ` +
                       `work units created… (${status.elapsed_s} s)`;
  }
  return status.state === "done" || status.state === "failed";
}

async function poll() {
  try {
    const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
    if (response.status === 404) {
      text.textContent = "This server process no longer knows the upload; look for the batch in the list.";
      link.href = root.dataset.listUrl;
      next.hidden = false;
      return;
    }
    if (show(await response.json())) return;
  } catch (error) {
    text.textContent = `Could not ask for progress (${error.message}); retrying…`;
  }
  setTimeout(poll, 500);
}

poll();
