// Minimal wasi:http/incoming-handler@0.2 service written in JavaScript.
//
// Built with componentize-js (see build.sh): the embedded engine turns the
// standard `fetch` event into the `incoming-handler` export. Answers every
// request, on any path, with 200 `hello from javascript`.
addEventListener("fetch", (event) =>
  event.respondWith(
    new Response("hello from javascript", {
      status: 200,
      headers: { "content-type": "text/plain" },
    }),
  ),
);
