// The autotag panel's buttons: POST the action to the admin view and swap in the panel it returns.
// The panel sits inside the page editor's <form>, so it uses no nested form and no named inputs.
(function () {
  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-autotag-action]');
    if (!button) return;
    var panel = button.closest('[data-autotag-panel]');
    var scope = button.closest('[data-autotag-url]');
    if (!panel || !scope) return;
    event.preventDefault();
    var data = new FormData();
    var token = document.querySelector('input[name="csrfmiddlewaretoken"]');
    data.append('csrfmiddlewaretoken', token ? token.value : '');
    data.append('action', button.dataset.autotagAction);
    var add = button.closest('.autotag-add');
    data.append('kind', add ? add.querySelector('[data-autotag-field="kind"]').value : (button.dataset.kind || ''));
    data.append('tag', add ? add.querySelector('[data-autotag-field="tag"]').value : (button.dataset.tag || ''));
    button.disabled = true;
    panel.setAttribute('aria-busy', 'true');
    fetch(scope.dataset.autotagUrl, {method: 'POST', body: data, credentials: 'same-origin',
                                     headers: {'X-Requested-With': 'fetch', 'X-CSRFToken': data.get('csrfmiddlewaretoken')}})
      .then(function (response) { return response.text(); })
      .then(function (html) { panel.innerHTML = html; })
      .catch(function () { button.disabled = false; })
      .finally(function () { panel.removeAttribute('aria-busy'); });
  });
  document.addEventListener('keydown', function (event) {
    // Enter in the add-a-tag box adds the tag instead of submitting the page form
    if (event.key === 'Enter' && event.target.matches('.autotag-add [data-autotag-field="tag"]')) {
      event.preventDefault();
      event.target.closest('.autotag-add').querySelector('[data-autotag-action="add"]').click();
    }
  });
})();
