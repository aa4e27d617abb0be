import { ConfigError, loadConfig } from '../../src/config';

describe('loadConfig: AMQP_URL', () => {
  it('defaults to the local broker', () => {
    expect(loadConfig({}).amqpUrls).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
  });

  it('takes the nodes of a cluster separated by commas, spaces around them ignored', () => {
    const config = loadConfig({ AMQP_URL: 'amqp://a:5672, amqps://b:5671 ,amqp://c' });
    expect(config.amqpUrls).toEqual(['amqp://a:5672', 'amqps://b:5671', 'amqp://c']);
  });

  it.each([['http://a:5672'], ['amqp://a,'], ['amqp://a,redis://b']])('refuses %s, naming the variable', (value) => {
    expect(() => loadConfig({ AMQP_URL: value })).toThrow(ConfigError);
    expect(() => loadConfig({ AMQP_URL: value })).toThrow(/AMQP_URL must be amqp: or amqps:\/\/ URLs separated by commas/);
  });
});
