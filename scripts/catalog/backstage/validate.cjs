// Runs Backstage's own entity validation (the policies and kind validators
// its catalog applies when it ingests an entity) over the entities on stdin
// (a JSON array, placeholders such as $text already substituted) and prints
// [{ref, error}] for the ones it refuses. Node modules: $CATALOG_NODE_MODULES.
'use strict';
const path = require('path');
const model = require(path.join(process.env.CATALOG_NODE_MODULES, '@backstage/catalog-model'));

const policy = model.EntityPolicies.allOf([
  new model.DefaultNamespaceEntityPolicy(),
  new model.NoForeignRootFieldsEntityPolicy(),
  new model.FieldFormatEntityPolicy(),
  new model.SchemaValidEntityPolicy(),
]);
const kinds = [
  model.apiEntityV1alpha1Validator,
  model.componentEntityV1alpha1Validator,
  model.domainEntityV1alpha1Validator,
  model.groupEntityV1alpha1Validator,
  model.locationEntityV1alpha1Validator,
  model.resourceEntityV1alpha1Validator,
  model.systemEntityV1alpha1Validator,
  model.userEntityV1alpha1Validator,
];

async function validate(entity) {
  const enforced = await policy.enforce(entity);
  for (const validator of kinds) {
    if (await validator.check(enforced)) return null;
  }
  return `no validator accepts kind ${entity.kind} (${entity.apiVersion})`;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const entities = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const refused = [];
  for (const entity of entities) {
    const ref = `${entity.kind}:${(entity.metadata || {}).name}`;
    try {
      const error = await validate(entity);
      if (error) refused.push({ ref, error });
    } catch (e) {
      refused.push({ ref, error: String(e && e.message ? e.message : e) });
    }
  }
  process.stdout.write(JSON.stringify({ checked: entities.length, refused }) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
