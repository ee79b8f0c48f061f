'use strict';
// Where the broker is: AMQP_URL, as for any RabbitMQ client. Warren and RabbitMQ both listen on
// amqp://guest:guest@localhost:5672/ by default, so the default works for either.
module.exports = function amqpUrl() {
  return process.env.AMQP_URL || 'amqp://guest:guest@localhost:5672';
};
